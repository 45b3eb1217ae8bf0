"""The scaffolded projects' demo flow on a real Compose stack of two replicas: each opt-in bug of the sample
backends (SCALEOUT_DEMO_BUG in scaleout.yaml's backend.env) is found by `scaleout replay` with the step and
depends_on their README promises, and without the flag the flow passes (the stateless control, after the bugs:
the fix passes again). One stack per template and three `up`s: the four bugs that live in different steps
(session, disk, cache, csrf) are on together, as a comma-separated list, so one replay proves each of them;
`secret` changes the signing key that the session and the form token both use, so it gets its own run."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import Project, free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

FLAG_OFF = "    # SCALEOUT_DEMO_BUG: session"
CASES = [
    ("session,disk,cache,csrf", {(2, 1, "session"), (4, 3, "local-disk"), (9, 8, "cache"), (6, 5, "token")}),
    ("secret", {(2, 1, "session"), (6, 5, "token")}),
    ("", set()),  # fixed: the stateless control passes
]


@pytest.fixture(scope="module", params=["python", "node"])
def demo(request, tmp_path_factory, images):
    base = tmp_path_factory.mktemp("replay-demo")
    name = f"rdemo{uuid.uuid4().hex[:8]}"
    path = base / name
    port = free_port()
    run_cli(["init", str(path), "--template", request.param, "--name", name], base, images, check=True)
    cfg = path / "scaleout.yaml"
    text = cfg.read_text()
    assert FLAG_OFF in text, "the scaffold's scaleout.yaml shows the demo flag"
    cfg.write_text(text.replace("port: 8080", f"port: {port}"))
    p = Project(path, name, port, dict(images))
    try:
        yield p
    finally:
        p.cli("down")
        remove_project(name)


def _set_flag(project: Project, bug: str) -> None:
    cfg = project.path / "scaleout.yaml"
    lines = [ln for ln in cfg.read_text().splitlines() if not ln.startswith("    SCALEOUT_DEMO_BUG:")]
    if bug:
        lines.insert(lines.index(next(ln for ln in lines if ln.startswith(FLAG_OFF))), f"    SCALEOUT_DEMO_BUG: {bug}")
    cfg.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bug,expected", CASES, ids=[c[0].replace(",", "+") or "off" for c in CASES])
def test_demo_flow(demo, bug, expected):
    _set_flag(demo, bug)
    demo.cli("up", "--replicas", "2", check=True, timeout=600)
    r = demo.cli("replay", "requests.http", "--json", timeout=300)
    assert r.returncode == (1 if expected else 0), r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == ("fail" if expected else "pass")
    assert {(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]} == expected
    assert out["failing_everywhere"] == [] and len(out["steps"]) == 9
    assert [s["path"] for s in out["steps"]][:3] == ["/api/login", "/api/me", "/api/notes"]  # not {{base}}/...
