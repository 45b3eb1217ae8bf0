"""The pure parts of `scaleout top`: the request record's parser, the window, the frame and its text."""

from __future__ import annotations

from types import SimpleNamespace

from scaleout.top.records import line_of, parse
from scaleout.top.view import TOP_SCHEMA, frame, text
from scaleout.top.window import Window, percentile

LINE = ("scaleout-request t=1700000000.123 st=200 m=GET rt=0.004 urt=0.003 b=12 "
        "upstream=172.18.0.3:8000 p=/api/items")


def test_parse_a_record_line():
    r = parse(LINE)
    assert r is not None
    assert (r.time, r.status, r.method, r.bytes, r.upstream, r.path) == (
        1700000000.123, 200, "GET", 12, "172.18.0.3:8000", "/api/items")
    assert r.request_time == 0.004 and r.upstream_time == 0.003


def test_parse_a_retried_request_names_the_replica_that_answered():
    r = parse("scaleout-request t=1.5 st=200 m=GET rt=0.6 urt=0.500, 0.002 b=3 "
              "upstream=10.0.0.2:8000, 10.0.0.3:8000 p=/a b")
    assert r.upstream == "10.0.0.3:8000" and r.upstream_time == 0.002 and r.path == "/a b"


def test_parse_a_request_the_balancer_answered_itself():
    r = parse("scaleout-request t=2 st=404 m=GET rt=0.000 urt=- b=0 upstream=- p=/static/x.css")
    assert r.upstream == "" and r.upstream_time is None and r.status == 404


def test_other_lines_are_not_requests():
    assert parse("2024/01/01 00:00:00 [warn] 1#1: something") is None
    assert parse("lb.sh: backend-2 is down") is None
    assert parse("scaleout-request t=x st=200") is None


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    vals = [float(i) for i in range(1, 101)]
    assert percentile(vals, 50) == 50.0 and percentile(vals, 99) == 99.0


def _req(t, addr, status=200, urt=0.01):
    return parse(f"scaleout-request t={t} st={status} m=GET rt={urt} urt={urt if addr else '-'} b=1 "
                 f"upstream={addr or '-'} p=/")


def _status(*names, routed=True):
    reps = [SimpleNamespace(service=n, state="running", health="healthy", routed=routed, address=None) for n in names]
    return SimpleNamespace(project="demo", replicas=reps, dependencies=[])


NAMES = {"10.0.0.1:8000": "backend-1", "10.0.0.2:8000": "backend-2"}


def test_window_counts_per_replica_and_drops_old_requests():
    w = Window(span_s=10)
    w.add([_req(100, "10.0.0.1:8000"), _req(105, "10.0.0.1:8000", status=503), _req(106, "10.0.0.2:8000"),
           _req(107, "")], lambda a: NAMES.get(a, a))
    t = w.traffic(now=108)
    assert t["backend-1"].requests == 2 and t["backend-1"].classes["5xx"] == 1 and t["backend-1"].classes["2xx"] == 1
    assert t["backend-2"].requests == 1 and t["lb"].requests == 1
    t = w.traffic(now=112)  # the request at 100 left the window; last_seen and total stay
    assert t["backend-1"].requests == 1 and t["backend-1"].total == 2 and t["backend-1"].last_seen == 105
    assert t["backend-1"].rate == 0.1


def test_frame_lists_idle_replicas_and_gone_ones():
    w = Window(span_s=10)
    w.add([_req(100, "10.0.0.1:8000"), _req(101, "10.0.0.9:8000")], lambda a: NAMES.get(a, "backend-9"))
    f = frame(_status("backend-1", "backend-2"), w, now=102)
    assert f["schema"] == TOP_SCHEMA
    by = {r["name"]: r for r in f["replicas"]}
    assert by["backend-1"]["requests"] == 1 and not by["backend-1"]["idle"]
    assert by["backend-2"]["requests"] == 0 and by["backend-2"]["idle"] and by["backend-2"]["last_seen"] is None
    assert [g["name"] for g in f["gone"]] == ["backend-9"]
    assert [q["replica"] for q in f["recent"]] == ["backend-1", "backend-9"]


def test_text_shows_every_replica_no_traffic_and_out_of_balancer():
    w = Window(span_s=10)
    w.add([_req(100, "10.0.0.1:8000")], lambda a: NAMES[a])
    out = text(frame(_status("backend-1", "backend-2", routed=False), w, now=101))
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("backend-")}
    assert "no traffic" in rows["backend-2"] and " NO " in rows["backend-2"]
    assert "1s ago" in rows["backend-1"]
    assert "\x1b[" not in out  # no colour unless asked
    assert "\x1b[31m" in text(frame(_status("backend-1", routed=False), w, now=101), color=True)


def test_request_line_names_the_replica():
    assert line_of(parse(LINE), "backend-2") == "backend-2    200 GET /api/items 4.0ms upstream=3.0ms 12B"


def _conf(tmp_path, extra: str = "") -> str:
    from scaleout.config.load import parse_config
    from scaleout.render.nginx import render_nginx

    (tmp_path / "backend").mkdir(exist_ok=True)
    (tmp_path / "public").mkdir(exist_ok=True)
    return render_nginx(parse_config("name: demo\n" + extra, tmp_path, env={}))


def test_request_log_is_on_by_default_and_switches_off(tmp_path):
    assert "access_log /dev/stdout scaleout buffer=32k flush=1s;" in _conf(tmp_path)
    conf = _conf(tmp_path, "balancer:\n  request_log: false\n")
    assert "access_log off;" in conf and "scaleout-request" not in conf


def test_request_log_must_be_a_boolean(tmp_path):
    import pytest

    from scaleout.errors import ConfigError

    with pytest.raises(ConfigError, match="request_log"):
        _conf(tmp_path, "balancer:\n  request_log: sometimes\n")
