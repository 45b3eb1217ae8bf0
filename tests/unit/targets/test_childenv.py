"""The environment and inputs of the programs scaleout runs (targets.childenv), without an engine: a fake
Compose CLI records what it was given."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from scaleout.errors import StackError
from scaleout.targets import runner
from scaleout.targets.childenv import child_environment, resolve_text

FAKE = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args == ["version"]:
    sys.exit(0)
f = args[args.index("-f") + 1]
e = args[args.index("--env-file") + 1]
json.dump({{"env": dict(os.environ), "args": args, "file": open(f).read(), "env_file": open(e).read(),
           "modes": [oct(os.stat(f).st_mode & 0o777), oct(os.stat(e).st_mode & 0o777)]}},
          open({out!r}, "w"))
"""

HOSTILE = {"PYTHONPATH": "..", "LD_PRELOAD": "/x/evil.so", "DOCKER_HOST": "tcp://192.0.2.1:2375",
           "DOCKER_CONFIG": "./cfg", "COMPOSE_FILE": "other.yml", "GREETING": "cost $5 ${X}"}


@pytest.fixture
def fake_compose(tmp_path, monkeypatch):
    out = tmp_path / "seen.json"
    script = tmp_path / "fake-compose"
    script.write_text(FAKE.format(python=sys.executable, out=str(out)))
    script.chmod(0o755)
    monkeypatch.setenv(runner.ENV_COMPOSE, str(script))
    for name in HOSTILE:
        monkeypatch.delenv(name, raising=False)
    runner.compose_cli.cache_clear()
    yield out
    runner.compose_cli.cache_clear()


def test_dotenv_resolves_the_file_and_never_enters_the_process_environment(tmp_path, fake_compose):
    gen = tmp_path / "proj" / ".scaleout"
    gen.mkdir(parents=True)
    compose_file = gen / "docker-compose.yml"
    compose_file.write_text('services:\n  b:\n    image: "x"\n    environment:\n      G: "${GREETING}"\n'
                            '      P: "$$literal"\n')
    runner.run_compose("p1", compose_file, ["down"], dotenv=HOSTILE)
    seen = json.loads(fake_compose.read_text())
    for name in HOSTILE:
        assert name not in seen["env"], name
    assert seen["env"]["COMPOSE_PROGRESS"] == "plain"
    assert seen["env_file"] == ""  # Compose reads no .env of its own (a committed .scaleout/.env)
    assert "${GREETING}" not in seen["file"] and "cost $$5 $${X}" in seen["file"] and "$$literal" in seen["file"]
    assert seen["modes"] == ["0o600", "0o600"]
    assert sorted(os.listdir(gen)) == ["docker-compose.yml"]  # the private copies are removed


def test_a_file_without_references_is_passed_as_is(tmp_path, fake_compose):
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text("services: {b: {image: x}}\n")
    runner.run_compose("p1", compose_file, ["ps"], dotenv={"A": "1"})
    seen = json.loads(fake_compose.read_text())
    assert seen["args"][seen["args"].index("-f") + 1] == str(compose_file)


def test_child_environment_is_the_users_plus_scaleouts_own():
    env = child_environment({"SCALEOUT_IMAGE": "img"}, environ={"PATH": "/bin", "COMPOSE_PROGRESS": "tty"})
    assert env == {"PATH": "/bin", "COMPOSE_PROGRESS": "tty", "BUILDKIT_PROGRESS": "plain", "SCALEOUT_IMAGE": "img"}


def test_resolve_puts_the_shell_over_dotenv_and_keeps_literals():
    text = 'a: "${A}"\nb: "${B:-dflt}"\nc: "$$x"\nd: 5\n'
    out = resolve_text(text, {"A": "dot", "B": ""}, environ={"A": "shell"})
    assert out == "a: shell\nb: dflt\nc: $$x\nd: 5\n"


def test_a_required_variable_that_is_missing_is_a_message():
    with pytest.raises(StackError, match="required variable A is not set"):
        resolve_text('a: "${A:?set A}"\n', {}, environ={})


def test_private_copy_mode(tmp_path):
    from scaleout.targets.childenv import resolved_file

    f = tmp_path / "s.yml"
    f.write_text('a: "${A}"\n')
    with resolved_file(f, {"A": "secret"}, environ={}) as copy:
        assert copy != f and stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert copy.read_text() == "a: secret\n"
    assert not copy.exists()
