"""Compose users' conventions without an engine: global options and where they may stand, -p as the
project name, `down -v`, `up --wait`, --lock-wait, --version, shell completion through the real CLI,
and the log merging, --since/--tail parsing and Compose-style prefixes of `scaleout logs`."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from scaleout.cli.argv import hoist_global_options as _hoist_global_options
from scaleout.errors import UsageError
from scaleout.report import LogPrinter
from scaleout.targets.logs import Follower, LogLine, merge, parse_chunk, parse_since, parse_tail, stamp_ns
from tests.helpers import ROOT, run_cli

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def project(tmp_path):
    r = run_cli(["init", "proj"], tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "proj"


# --- where global options may stand -------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["up", "-q"], ["-q", "up"]),
    (["up", "--verbose", "-C", "d"], ["--verbose", "-C", "d", "up"]),
    (["-v", "up"], ["-v", "up"]),
    (["down", "-v"], ["down", "-v"]),  # down's own -v: --volumes
    (["-p", "demo", "up"], ["-p", "demo", "up"]),
    (["up", "--project-name", "demo"], ["--project-name", "demo", "up"]),
    (["render", "--project-name=demo", "-q"], ["--project-name=demo", "-q", "render"]),
    # exec: after the service name, everything belongs to the command run in the container
    (["exec", "-q", "backend-1", "grep", "-q", "-v", "x", "-p", "1"], ["-q", "exec", "backend-1", "grep", "-q", "-v",
                                                                       "x", "-p", "1"]),
    (["exec", "-u", "root", "backend-1", "ls", "-C"], ["exec", "-u", "root", "backend-1", "ls", "-C"]),
    (["exec", "backend-1", "--", "sh", "-v"], ["exec", "backend-1", "--", "sh", "-v"]),
])
def test_global_options_are_hoisted_only_where_they_cannot_mislead(argv, expected):
    assert _hoist_global_options(argv) == expected


@pytest.mark.parametrize("argv, words", [
    (["up", "-p", "8080"], ["-p is the project name", "--port"]),
    (["render", "-p8080"], ["-p is the project name", "--port"]),
    (["up", "-v"], ["--volumes for `down`", "scaleout -v up", "--verbose"]),
    (["status", "-v"], ["--volumes for `down`", "scaleout -v status"]),
    (["up", "--wait", "30"], ["--wait-timeout", "--lock-wait"]),
])
def test_misleading_flags_after_the_command_are_refused_with_a_pointer(argv, words):
    with pytest.raises(UsageError) as err:
        _hoist_global_options(argv)
    for w in words:
        assert w in str(err.value)


def test_dash_p_after_the_command_exits_2_through_the_cli_and_writes_nothing(project):
    r = run_cli(["render", "-p", "9090"], project)
    assert r.returncode == 2, r.stderr
    assert "--port" in r.stderr and "Traceback" not in r.stderr
    assert not (project / ".scaleout").exists()


def test_a_numeric_project_name_looks_like_a_port(project):
    r = run_cli(["-p", "8081", "render"], project)
    assert r.returncode == 2
    assert "looks like a port" in r.stderr and "--port 8081" in r.stderr
    assert not (project / ".scaleout").exists()


def test_project_name_overrides_the_config_and_is_validated_like_name(project):
    r = run_cli(["-p", "other-name", "render"], project)
    assert r.returncode == 0, r.stderr
    compose = (project / ".scaleout" / "docker-compose.yml").read_text()
    assert "io.scaleout.project: other-name" in compose and "io.scaleout.project: proj" not in compose
    r = run_cli(["render", "--project-name", "Not_A_Label"], project)
    assert r.returncode == 2
    assert "--project-name" in r.stderr and "DNS label" in r.stderr


def test_port_keeps_its_long_name(project):
    r = run_cli(["render", "--port", "9191"], project)
    assert r.returncode == 0, r.stderr
    assert "127.0.0.1:9191:80" in (project / ".scaleout" / "docker-compose.yml").read_text()


def test_verbose_before_the_command_and_long_verbose_after_it(project):
    assert run_cli(["-v", "render"], project).returncode == 0
    assert run_cli(["render", "--verbose"], project).returncode == 0


def test_down_v_is_volumes(project):
    # no engine: `down -v` gets as far as the engine (exit 3), so -v was taken as down's own option
    r = run_cli(["down", "-v"], project, NO_ENGINE)
    assert r.returncode == 3, r.stderr
    assert "No such option" not in r.stderr
    r = run_cli(["down", "-h"], project)
    assert re.search(r"-v, --volumes", r.stdout), r.stdout


def test_up_wait_is_compose_boolean_and_the_lock_wait_is_renamed(project):
    r = run_cli(["up", "-h"], project)
    assert "--wait " in r.stdout and "--wait-timeout" in r.stdout and "--lock-wait" in r.stdout
    for cmd in ("render", "down", "bench"):
        r = run_cli([cmd, "-h"], project)
        assert "--lock-wait" in r.stdout, cmd
        assert not re.search(r"--wait\b", r.stdout), cmd
    r = run_cli(["render", "--wait", "3"], project)
    assert r.returncode == 2 and "--lock-wait" in r.stderr  # click's "possible options"
    r = run_cli(["up", "--wait", "30"], project)
    assert r.returncode == 2 and "--wait-timeout" in r.stderr and "Traceback" not in r.stderr


def test_lock_wait_waits_for_the_lock(project):
    from scaleout.files import project_lock

    def release_later(lock):
        time.sleep(1.0)
        lock.__exit__(None, None, None)

    lock = project_lock(project)
    lock.__enter__()
    r = run_cli(["render"], project)
    assert r.returncode == 6 and "--lock-wait SECONDS" in r.stderr
    threading.Thread(target=release_later, args=(lock,), daemon=True).start()
    # the lock is held in this process, the CLI runs in another: it waits, then renders
    t0 = time.monotonic()
    r = run_cli(["render", "--lock-wait", "20"], project)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 >= 0.9


def test_version_prints_the_package_version(tmp_path):
    import scaleout

    r = run_cli(["--version"], tmp_path)
    assert r.returncode == 0
    assert r.stdout == f"scaleout {scaleout.__version__}\n"
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert declared == scaleout.__version__


@pytest.mark.parametrize("args", [["logs"], ["exec", "backend-1", "true"], ["stop", "backend-1"],
                                  ["start", "backend-1"], ["restart", "lb"]])
def test_ops_commands_without_an_engine_or_on_swarm(project, args):
    r = run_cli(args, project, NO_ENGINE)
    assert r.returncode == 3, r.stderr
    assert "Docker engine" in r.stderr and "Traceback" not in r.stderr
    (project / ".scaleout").mkdir()
    (project / ".scaleout" / "target").write_text("swarm\n")
    r = run_cli(args, project, NO_ENGINE)
    assert r.returncode == 2, r.stderr
    assert "Compose stack" in r.stderr and "docker service" in r.stderr


# --- shell completion, through the real CLI ------------------------------------------------------
def _complete(cwd: Path, line: str) -> list[str]:
    words = line.split(" ")
    env = {**NO_ENGINE, "_SCALEOUT_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    r = run_cli([], cwd, env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_completion_offers_commands_strategies_templates_and_targets(project):
    commands = set(_complete(project, "scaleout "))
    assert {"logs", "exec", "stop", "start", "restart", "completion", "up", "down"} <= commands
    assert _complete(project, "scaleout up --strategy ") == ["round_robin", "least_conn", "ip_hash", "hash", "random"]
    assert _complete(project, "scaleout init --template ") == ["python", "node", "python-redis", "node-redis"]
    assert _complete(project, "scaleout up --target ") == ["compose", "swarm"]
    assert _complete(project, "scaleout completion ") == ["bash", "zsh", "fish"]


def test_completion_offers_the_replicas_of_scaleout_yaml(project, tmp_path):
    cfg = project / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("replicas: 3", "replicas: 4"))
    expected = ["backend-1", "backend-2", "backend-3", "backend-4", "lb"]
    for cmd in ("logs", "stop", "start", "restart", "exec"):
        assert _complete(project, f"scaleout {cmd} ") == expected, cmd
    assert _complete(project, "scaleout logs backend-1 backend-") == ["backend-2", "backend-3", "backend-4"]
    assert _complete(tmp_path, f"scaleout -C {project} stop ") == expected  # the project named by -C


def test_completion_script_for_each_shell(tmp_path):
    for shell, marker in (("bash", "complete_bash"), ("zsh", "complete_zsh"), ("fish", "complete_fish")):
        r = run_cli(["completion", shell], tmp_path)
        assert r.returncode == 0, r.stderr
        assert "_SCALEOUT_COMPLETE" in r.stdout and marker in r.stdout
    r = run_cli(["completion", "tcsh"], tmp_path)
    assert r.returncode == 2


# --- logs: parsing, merging, prefixes --------------------------------------------------------------
def test_stamps_sort_by_time_not_by_text():
    a = stamp_ns("2024-05-01T12:00:00.5Z")
    b = stamp_ns("2024-05-01T12:00:00.123456789Z")
    c = stamp_ns("2024-05-01T14:00:01+02:00")  # 12:00:01 UTC
    assert b < a < c
    assert a - stamp_ns("2024-05-01T12:00:00Z") == 500_000_000
    assert stamp_ns("not a stamp") == 0


def test_merge_interleaves_containers_by_timestamp():
    one = parse_chunk("backend-1", b"2024-05-01T12:00:01.000000000Z a1\n2024-05-01T12:00:03.000000000Z a3\n")
    two = parse_chunk("backend-2", b"2024-05-01T12:00:02.000000000Z b2\r\n2024-05-01T12:00:04.000000000Z b4\n")
    assert [ln.text for ln in merge([one, two])] == ["a1", "b2", "a3", "b4"]


def test_since_takes_durations_dates_and_unix_times():
    now = 1_700_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("1h30m", now) == now - 5400
    assert parse_since("1.5s", now) == now - 1.5
    assert parse_since("1699999000", now) == 1699999000.0
    assert parse_since("2023-11-14T22:13:20Z", now) == 1_700_000_000.0
    for bad in ("yesterday", "10x", "", "-5m"):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad, now)


def test_tail_is_a_count_or_all():
    assert parse_tail("all") == "all" and parse_tail("5") == 5 and parse_tail("0") == 0
    with pytest.raises(UsageError, match="--tail"):
        parse_tail("-1")


def _line(service: str, text: str, stamp: str = "2024-05-01T12:00:00.000000001Z") -> LogLine:
    return LogLine(service, stamp, text, stamp_ns(stamp))


def test_prefixes_are_padded_like_compose_and_coloured_one_colour_per_service():
    plain = LogPrinter(["backend-1", "backend-10", "lb"], color=False, timestamps=False)
    assert plain.format(_line("backend-1", "hi")) == "backend-1   | hi"
    assert plain.format(_line("lb", "hi")) == "lb          | hi"
    stamped = LogPrinter(["lb"], color=False, timestamps=True)
    assert stamped.format(_line("lb", "x")) == "lb  | 2024-05-01T12:00:00.000000001Z x"
    coloured = LogPrinter(["backend-1", "backend-2", "lb"], color=True, timestamps=False)
    codes = [re.match(r"\x1b\[(\d+)m", coloured.format(_line(s, "x"))).group(1)
             for s in ("backend-1", "backend-2", "lb")]
    assert len(set(codes)) == 3
    assert LogPrinter(["lb"], color=True, timestamps=False, prefix=False).format(_line("lb", "x")) == "x"


class FakeContainer:
    """A container whose log grows in stages: `logs(follow=True)` returns what a stage has (the stream
    ends: the container stopped), `reload()` moves on to the next stage; past the last it is removed."""

    def __init__(self, stages: list[list[str]]):
        self.stages = stages
        self.stage = 0
        self.status = "running"
        self.since_asked: list[float] = []

    def logs(self, stream=False, follow=False, timestamps=False, since=None, **_):
        self.since_asked.append(since)
        every = [ln for s in self.stages[:self.stage + 1] for ln in s]
        data = "".join(ln + "\n" for ln in every
                       if since is None or stamp_ns(ln.split(" ")[0]) / 1e9 >= since).encode()
        return iter([data[:7], data[7:]])  # split mid-line, as the engine's frames may be

    def reload(self):
        import docker.errors

        self.stage += 1
        if self.stage >= len(self.stages):
            raise docker.errors.NotFound("gone")
        self.status = "running"


def test_follow_skips_what_was_printed_and_reattaches_after_a_restart():
    fake = FakeContainer([
        ["2024-05-01T12:00:01.000000000Z old", "2024-05-01T12:00:02.000000000Z seen",
         "2024-05-01T12:00:02.000000000Z new-same-stamp", "2024-05-01T12:00:03.000000000Z later"],
        ["2024-05-01T12:00:05.000000000Z after-restart"],
    ])
    history = [_line("backend-1", "old", "2024-05-01T12:00:01.000000000Z"),
               _line("backend-1", "seen", "2024-05-01T12:00:02.000000000Z")]
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(ln.text for ln in Follower({"backend-1": fake}, history,
                                                                                   started=0).lines()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), f"follow did not end when its container went away (read {got})"
    assert got == ["new-same-stamp", "later", "after-restart"]
    assert len(fake.since_asked) == 2 and fake.since_asked[1] > fake.since_asked[0]


def test_the_python_sample_backend_finishes_in_flight_requests_when_stopped(tmp_path):
    """`scaleout stop` (docker stop: SIGTERM) must not cut a response in half: nginx cannot retry a
    response that had begun, so the client would see it fail."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from tests.helpers import free_port, wait_for

    port = free_port()
    app = ROOT / "templates" / "init" / "python" / "backend" / "app.py"
    env = {**os.environ, "PORT": str(port), "CPU_WORK_MS": "1500"}
    proc = subprocess.Popen([sys.executable, str(app)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/healthz"), timeout=20, what="the sample backend")
        result: dict = {}

        def slow_request():
            try:
                r = httpx.get(url + "/api/whoami", timeout=20, trust_env=False)
                result["status"], result["body"] = r.status_code, r.text
            except httpx.HTTPError as exc:
                result["error"] = repr(exc)

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.5)  # the request is being answered (1.5 s of work)
        proc.send_signal(signal.SIGTERM)
        t.join(timeout=20)
        assert result.get("status") == 200 and '"backend"' in result.get("body", ""), result
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_follow_picks_up_containers_that_start_later():
    """A rolling update replaces every replica's container, a rescale adds replicas: `logs -f` must go on
    with the new containers (found by looking at the stack again), and end only when none is left."""
    old = FakeContainer([["2024-05-01T12:00:01.000000000Z old-version"]])
    new = FakeContainer([["2024-05-01T12:00:04.000000000Z new-version", "2024-05-01T12:00:05.000000000Z more"]])
    new.id = "new-container"
    starting = FakeContainer([["2024-05-01T12:00:06.000000000Z never-ran"]])
    starting.id, starting.status = "created-only", "created"
    scans: list[int] = []

    def rescan():
        scans.append(1)
        # the old container is listed while it drains, beside its replacement
        return [("backend-1", old), ("backend-9", starting), ("backend-1", new)]

    got: list[tuple[str, str]] = []
    reader = threading.Thread(target=lambda: got.extend(
        (ln.service, ln.text) for ln in Follower({"backend-1": old}, [], started=0, rescan=rescan,
                                                 rescan_s=0.05).lines()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), f"follow did not end (read {got})"
    assert got == [("backend-1", "old-version"), ("backend-1", "new-version"), ("backend-1", "more")]
    assert new.since_asked[:1] == [None]  # a new container's whole log is new (and no float the engine refuses)
    assert starting.since_asked == []  # never followed: it never ran
    assert len(scans) >= 2  # looked again once every reader had ended, found nothing new, and stopped


def test_log_printer_gives_a_later_service_its_own_prefix_and_colour():
    printer = LogPrinter(["backend-1", "lb"], color=True, timestamps=False)
    later = printer.format(_line("backend-4", "x"))
    m = re.match(r"\x1b\[(\d+)m(backend-4) +\| \x1b\[0mx$", later)
    assert m, later
    first = re.match(r"\x1b\[(\d+)m", printer.format(_line("backend-1", "x"))).group(1)
    lb = re.match(r"\x1b\[(\d+)m", printer.format(_line("lb", "x"))).group(1)
    assert len({first, lb, m.group(1)}) == 3
    assert LogPrinter(["lb"], color=False, timestamps=False).format(_line("backend-2", "y")).startswith("backend-2 |")
