"""Hostile scaleout.yaml and .env files through the real CLI: each one ends in exit 2 with a message
naming the file, never a traceback, never a hang (a 20 s timeout), and nothing is written.
Plus random bytes and text through parse_config: only ConfigError may come out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleout.config.load import load_config, parse_config
from scaleout.config.model import Config
from scaleout.config.yamlload import MAX_BYTES
from scaleout.errors import ConfigError
from tests.helpers import TESTS, run_cli

CORPUS = TESTS / "fixtures" / "hostile-yaml"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".yaml")
TIMEOUT_S = 20


def render(project: Path) -> subprocess.CompletedProcess:
    try:
        return run_cli(["render"], project, {"SCALEOUT_LB_IMAGE": "", "SCALEOUT_BASE_IMAGE": ""}, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scaleout render did not finish within {TIMEOUT_S}s")


def assert_refused(r: subprocess.CompletedProcess, project: Path, what: str = "scaleout.yaml") -> None:
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout[:2000]}\nstderr: {r.stderr[:2000]}"
    assert "Traceback" not in r.stderr, r.stderr[:4000]
    assert r.stderr.startswith("error: ") and what in r.stderr, r.stderr[:2000]
    assert len(r.stderr) < 5000, "the message should be short"
    assert not (project / ".scaleout").exists(), "nothing may be written"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    (p / "public").mkdir(parents=True)
    (p / "backend").mkdir()
    (p / "backend" / "Dockerfile").write_text("FROM scratch\n")
    return p


# what each file's message must say: the file, the line, and the rule
EXPECT = {
    "alias-bomb.yaml": "scaleout.yaml:4: backend.env.L0: YAML anchors (&l0) are not allowed",
    "alias-merge.yaml": "scaleout.yaml:1: base: YAML anchors (&base) are not allowed",
    "alias-only.yaml": "scaleout.yaml:2: backend.env: YAML aliases (*undefined) are not allowed",
    "binary-garbage.yaml": "scaleout.yaml:1: cannot be read: not valid UTF-8",
    "binary-tag.yaml": "scaleout.yaml:1: name: YAML tag !!binary is not allowed",
    "body-size-zero.yaml": "scaleout.yaml:2: balancer.client_max_body_size: 0 would turn the limit off",
    "complex-key.yaml": "scaleout.yaml:1: not valid YAML for scaleout: a key must be a plain value",
    "control-characters.yaml": "scaleout.yaml:1: not valid YAML: character #x001b is not allowed",
    "deep-block.yaml": "scaleout.yaml:33: " + ".".join(["a"] * 32) + ": nested deeper",
    "deep-flow-mapping.yaml": "scaleout.yaml:1: backend.a.a.a",
    "deep-flow-sequence.yaml": "scaleout.yaml:3:",
    "duplicate-bind.yaml": "scaleout.yaml:3: balancer.bind: duplicate key (first set on line 2)",
    "float-5000-digits.yaml": "scaleout.yaml:2: backend.port: number is 5002 characters long",
    "hex-20000-digits.yaml": "scaleout.yaml:2: backend.port: number is 20002 characters long",
    "int-5000-digits.yaml": "scaleout.yaml:2: backend.port: number is 5000 characters long",
    "int-tag-5000-digits.yaml": "scaleout.yaml:2: backend.port: number is 5000 characters long",
    "interpolation-required.yaml": "scaleout.yaml:3: backend.env.A: required variable SCALEOUT_SURELY_UNSET_VARIABLE",
    "interpolation-unclosed.yaml": "scaleout.yaml:3: backend.env.A: '${NEVER_CLOSED': '${' is never closed",
    "invalid-utf8.yaml": "scaleout.yaml:4: cannot be read: not valid UTF-8",
    "long-key.yaml": "scaleout.yaml:1: not valid YAML",
    "nul-bytes.yaml": "scaleout.yaml:1: not valid YAML: character #x0000 is not allowed",
    "python-tag.yaml": "scaleout.yaml:1: name: YAML tag !!python/object/apply:os.system is not allowed",
    "tabs.yaml": "scaleout.yaml:2: not valid YAML",
    "trailing-newline-name.yaml": "scaleout.yaml:1: name: must be a DNS label",
    "two-documents.yaml": "scaleout.yaml:2: only one YAML document is allowed",
    "unclosed-quote.yaml": "scaleout.yaml:3: not valid YAML",
    "utf16.yaml": "scaleout.yaml:1: cannot be read: not valid UTF-8",
}


def test_the_corpus_is_there_and_every_file_has_an_expectation():
    assert sorted(EXPECT) == [p.name for p in FILES]


@pytest.mark.parametrize("fixture", FILES, ids=[p.name for p in FILES])
def test_hostile_yaml_exits_2_without_traceback(project, fixture):
    (project / "scaleout.yaml").write_bytes(fixture.read_bytes())
    r = render(project)
    assert_refused(r, project)
    assert r.stderr.startswith("error: " + EXPECT[fixture.name]), r.stderr[:1000]


def test_too_many_values(project):
    (project / "scaleout.yaml").write_text("backend:\n  env: [" + ", ".join(["1"] * 120_000) + "]\n")
    assert_refused(render(project), project)


def test_oversized_file(project):
    with open(project / "scaleout.yaml", "wb") as f:
        f.write(b"name: big\n" + b"#" * (MAX_BYTES * 50))
    r = render(project)
    assert_refused(r, project)
    assert "at most 1048576 bytes" in r.stderr


def test_symlink_to_dev_zero(project):
    (project / "scaleout.yaml").symlink_to("/dev/zero")
    r = render(project)
    assert_refused(r, project)
    assert "not a regular file" in r.stderr


def test_fifo_without_a_writer(project):
    os.mkfifo(project / "scaleout.yaml")
    r = render(project)
    assert_refused(r, project)
    assert "not a regular file" in r.stderr


def test_folder(project):
    (project / "scaleout.yaml").mkdir()
    assert_refused(render(project), project)


@pytest.mark.parametrize("make", ["dev-zero", "fifo", "outside", "folder", "garbage", "huge", "bad-line"])
def test_hostile_dotenv(project, tmp_path, make):
    (project / "scaleout.yaml").write_text("name: ok\n")
    env = project / ".env"
    if make == "dev-zero":
        env.symlink_to("/dev/zero")
    elif make == "fifo":
        os.mkfifo(env)
    elif make == "outside":
        (tmp_path / "secrets.env").write_text("A=1\n")
        env.symlink_to(tmp_path / "secrets.env")
    elif make == "folder":
        env.mkdir()
    elif make == "garbage":
        env.write_bytes(bytes(range(256)) * 4)
    elif make == "huge":
        env.write_bytes(b"A=" + b"x" * (MAX_BYTES + 10) + b"\n")
    elif make == "bad-line":
        env.write_text("A=1\nthis is not an assignment\n")
    assert_refused(render(project), project, ".env")


# --- random input: ConfigError or a Config, nothing else ------------------------------------------------

# fragments of YAML syntax and of scaleout.yaml's keys, glued at random
yamlish = st.lists(st.sampled_from(list("[]{}:-&*!|>'\"#%@`,?\n \t\\ab01$.~") + [
    "backend", "env", "name", "<<", "!!int ", "${", "services", "\n  ", ": ", "- ", "&a ", "*a", "0x", "9" * 30,
]), max_size=80).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), yamlish))
def test_random_text_gives_a_config_or_a_config_error(text):
    try:
        cfg = parse_config(text, Path("/tmp/scaleout-hostile/p"), env={}, dotenv={})
    except ConfigError as exc:
        assert exc.problems and all(line.startswith("scaleout.yaml") for line in exc.problems)
    else:
        assert isinstance(cfg, Config)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.binary(max_size=200))
def test_random_bytes_in_both_files_give_a_config_or_a_config_error(tmp_path, yaml_bytes, env_bytes):
    (tmp_path / "scaleout.yaml").write_bytes(yaml_bytes)
    (tmp_path / ".env").write_bytes(env_bytes)
    try:
        cfg = load_config(tmp_path, env={})
    except ConfigError as exc:
        assert str(exc).strip()
    else:
        assert isinstance(cfg, Config)
