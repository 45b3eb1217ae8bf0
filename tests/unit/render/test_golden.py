"""Every example renders byte-for-byte to tests/golden/<example>/; `--update-golden` rewrites them
(and re-scaffolds the init-generated examples). The output is also parsed, so a bad regenerate cannot hide."""

from __future__ import annotations

import shutil

import pytest
import yaml

from scaleout.config.load import load_config
from scaleout.layout import OUT_DIR
from scaleout.render.assets import plan_assets
from scaleout.render.compose import render
from scaleout.render.worker import render_worker
from scaleout.scaffold import scaffold_files
from tests.helpers import ROOT

EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"
# examples that are exactly what `scaleout init --template T --name N` writes
SCAFFOLDED = {"python-demo": "python", "node-demo": "node"}
# examples with their own scaleout.yaml but the template's backend and public/ files
VARIANTS = {"weighted-backup": "python"}


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if (p / "scaleout.yaml").is_file())


def rendered(example: str) -> dict[str, str]:
    cfg = load_config(EXAMPLES / example, env={})  # golden files never depend on SCALEOUT_* variables
    files = render(cfg, worker=render_worker(cfg), assets=plan_assets(cfg).env_value())
    return {rel.removeprefix(OUT_DIR + "/"): text for rel, text in files.items()}


@pytest.fixture(scope="module", autouse=True)
def maybe_update(request):
    if not request.config.getoption("--update-golden"):
        return
    for name, template in {**SCAFFOLDED, **VARIANTS}.items():
        target = EXAMPLES / name
        for rel, data in scaffold_files(name, template).items():
            if name in VARIANTS and rel == "scaleout.yaml":
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(data)
    for name in example_names():
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
        for rel, text in rendered(name).items():
            (GOLDEN / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name / rel).write_text(text)


def test_there_are_examples():
    assert set(SCAFFOLDED) <= set(example_names())


@pytest.mark.parametrize("example", example_names())
def test_example_matches_golden(example):
    files = rendered(example)
    golden = {p.relative_to(GOLDEN / example).as_posix(): p.read_text()
              for p in (GOLDEN / example).rglob("*") if p.is_file()}
    assert sorted(files) == sorted(golden)
    for rel, text in files.items():
        assert text == golden[rel], f"{example}/{rel} differs from its golden file (pytest --update-golden)"


@pytest.mark.parametrize("example", example_names())
def test_golden_output_parses(example):
    compose = yaml.safe_load((GOLDEN / example / "docker-compose.yml").read_text())
    services = compose["services"]
    cfg = load_config(EXAMPLES / example, env={})
    assert [s for s in services if s.startswith("backend-")] == [f"backend-{i}" for i in range(1, cfg.replicas + 1)]
    assert services["lb"]["ports"] == [f"127.0.0.1:{cfg.balancer.port}:80"]
    import crossplane

    parsed = crossplane.parse(str(GOLDEN / example / "nginx" / "nginx.conf"), check_ctx=True, check_args=True,
                              single=True)
    assert parsed["status"] == "ok", parsed["errors"]
    upstream = [s for s in _walk(parsed["config"][0]["parsed"])
                if s["directive"] == "server" and s["args"] and ":" in s["args"][0]]
    assert len(upstream) == cfg.replicas


def _walk(block):
    for s in block:
        yield s
        yield from _walk(s.get("block", []))


@pytest.mark.parametrize("example", sorted({**SCAFFOLDED, **VARIANTS}))
def test_scaffolded_examples_are_what_init_writes(example):
    files = scaffold_files(example, {**SCAFFOLDED, **VARIANTS}[example])
    for rel, data in files.items():
        if example in VARIANTS and rel == "scaleout.yaml":
            continue
        assert (EXAMPLES / example / rel).read_bytes() == data, \
            f"examples/{example}/{rel} is stale (pytest --update-golden)"


def test_rendering_twice_is_byte_identical(tmp_path):
    from scaleout.files import write_plan
    from scaleout.render import plan_for

    shutil.copytree(EXAMPLES / "python-demo", tmp_path / "p")
    cfg = load_config(tmp_path / "p", env={})
    first = write_plan(cfg.project_dir, plan_for("compose", cfg)).written
    snapshot = {p: p.read_bytes() for p in (tmp_path / "p" / OUT_DIR).rglob("*") if p.is_file()}
    second = write_plan(cfg.project_dir, plan_for("compose", cfg)).written
    assert first and second == []
    assert snapshot == {p: p.read_bytes() for p in (tmp_path / "p" / OUT_DIR).rglob("*") if p.is_file()}
