"""A request line the probe could not send well-formed is refused before anything is sent: --path with a
space, tab, control or non-ASCII character, --method with anything but upper-case ASCII letters, and header
names and values the CLI cannot carry. Exit 2, one message naming the option, no traceback, no request."""

from __future__ import annotations

import pytest

from scaleout.errors import UsageError
from scaleout.probe.project import ProbeAsk, check_request_line, probe_project
from tests.helpers import run_cli
from tests.helpers.probe_testserver import MisbehavingServer

BAD_PATHS = ["/a\tb", "/a b", "/a\x0bb", "/a\x00", "/a\x7f", "/caf\xe9", "/\u2028x", "/a\rb", "x/a", "", "/\x1b[2J"]
BAD_METHODS = ["G\xc9T", "\u0413ET", "GET /x", "GE\tT", "", "get", "GET\r\n", "G-T", "A" * 33, "\u216b"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_refused(path):
    with pytest.raises(UsageError, match="--path"):
        check_request_line("GET", path)


@pytest.mark.parametrize("method", BAD_METHODS)
def test_bad_methods_are_refused(method):
    with pytest.raises(UsageError, match="--method"):
        check_request_line(method, "/")


def test_good_request_lines_pass():
    for method, path in (("GET", "/"), ("HEAD", "/a?b=c&d=%20#x"), ("PROPFIND", "/~u/!$&'()*+,;=:@")):
        check_request_line(method, path)


def test_probe_project_refuses_them_too(tmp_path):
    with pytest.raises(UsageError, match="--path"):
        probe_project(tmp_path, ProbeAsk(url="http://127.0.0.1:9", path="/a\tb"))


@pytest.mark.parametrize("args, option", [
    (["--path", "/x\ty"], "--path"), (["--path", "/caf\xe9"], "--path"), (["--path", "/\x01"], "--path"),
    (["-X", "P\xd6ST"], "--method"), (["--method", "GET /admin"], "--method"), (["-X", "\u0434"], "--method"),
    (["-H", "X-\u0434: a"], "--header"), (["-H", "X-A: \u20ac"], "--header"), (["-H", "X-A: a\tb"], "--header"),
    (["-H", "X A: b"], "--header"),
])
def test_the_cli_exits_2_with_a_message_and_sends_nothing(tmp_path, args, option):
    with MisbehavingServer() as srv:
        r = run_cli(["probe", "--url", srv.url, "-n", "3", *args], tmp_path, timeout=30)
        assert srv.c.requests == 0
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert option in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bench_refuses_a_bad_path_before_reading_the_project(tmp_path):
    r = run_cli(["bench", "--path", "/a\tb"], tmp_path, timeout=30)
    assert r.returncode == 2 and "--path" in r.stderr and "Traceback" not in r.stderr, r.stderr
