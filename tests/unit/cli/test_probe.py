"""`scaleout probe` from the command line against a local server: JSON schema, load shapes, progress."""

from __future__ import annotations

import json

from tests.helpers import run_cli
from tests.helpers.probe_testserver import UPSTREAMS, Behaviour, MisbehavingServer

TOP_KEYS = {"schema", "url", "requests", "ok", "failed", "rps", "duration_s", "backends", "status_codes", "errors",
            "latency_ms", "strategy", "verdict", "reasons", "spread", "sticky", "cache_checks", "load", "unattributed",
            "failed_rules", "tls"}
BACKEND_KEYS = {"name", "address", "count", "share", "latency_ms", "status_codes", "keys"}
LATENCY_KEYS = {"p50", "p90", "p99", "max", "mean"}
LOAD_KEYS = {"mode", "requests", "duration_s", "concurrency", "rate", "workers", "method", "path", "latency_from"}


def test_json_follows_the_documented_schema(tmp_path):
    with MisbehavingServer() as srv:
        r = run_cli(["probe", "--url", srv.url, "--requests", "3000", "--concurrency", "6", "--json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert set(res) == TOP_KEYS and res["schema"] == "scaleout.probe/1"
    assert set(res["latency_ms"]) == LATENCY_KEYS and set(res["load"]) == LOAD_KEYS
    assert set(res["errors"]) == {"connect", "timeout", "reset", "protocol", "tls"}
    assert res["tls"] is None  # plain HTTP
    assert res["requests"] == 3000 and res["ok"] == 3000 and res["verdict"] == "pass"
    assert {b["address"]: b["count"] for b in res["backends"]} == srv.c.answered
    for b in res["backends"]:
        assert set(b) == BACKEND_KEYS and set(b["latency_ms"]) == LATENCY_KEYS
    assert sorted(b["address"] for b in res["backends"]) == sorted(UPSTREAMS)
    assert res["spread"]["chi_square_p"] > 0.5  # the server spreads exactly round robin
    assert res["load"]["mode"] == "closed" and res["load"]["concurrency"] == 6
    assert " req " not in r.stderr  # no progress bar when stderr is not a terminal


def test_progress_bar_goes_to_stderr_only(tmp_path):
    with MisbehavingServer() as srv:
        r = run_cli(["probe", "--url", srv.url, "--requests", "500", "--json", "--progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["requests"] == 500
    assert "[##############################] 500/500 req" in r.stderr  # (text mode turns \r into \n)


def test_open_loop_by_duration_from_the_cli(tmp_path):
    with MisbehavingServer() as srv:
        r = run_cli(["probe", "--url", srv.url, "--rate", "100", "--duration", "0.5", "--json",
                     "--method", "GET", "--path", "/x", "-H", "X-A: b"], tmp_path)
    res = json.loads(r.stdout)
    assert res["requests"] == 50 and res["load"]["mode"] == "open" and res["load"]["rate"] == 100
    assert res["load"]["latency_from"] == "intended_send"
    assert srv.c.paths == {"/x": 50} and srv.c.headers[0]["X-A"] == "b"


def test_text_output_and_failed_verdict_exit_code(tmp_path):
    with MisbehavingServer(Behaviour(close_after=1, reset_every=4)) as srv:
        r = run_cli(["probe", "--url", srv.url, "--requests", "40", "--concurrency", "2"], tmp_path)
    assert r.returncode == 1
    assert "verdict: FAIL" in r.stdout and "reset: 10" in r.stdout
    assert "10.9.0.1:8000" in r.stdout and "#" in r.stdout


def test_remote_targets_need_allow_remote(tmp_path):
    r = run_cli(["probe", "--url", "http://192.0.2.1:80", "--requests", "1"], tmp_path)
    assert r.returncode == 2 and "--allow-remote" in r.stderr and "Traceback" not in r.stderr


def test_bad_rate_is_a_usage_error(tmp_path):
    r = run_cli(["probe", "--url", "http://127.0.0.1:9", "--rate", "0"], tmp_path)
    assert r.returncode == 2 and "--rate" in r.stderr
