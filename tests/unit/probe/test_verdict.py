"""Every way the probe's verdict can fail, on crafted data: one case per rule of scaleout/probe/verdict.py, each
next to a good case that must pass. Silencing any rule (or making it fire on good data) fails a test here."""

from __future__ import annotations

import re

import pytest

from scaleout.probe.project import ProbeResult, Sample, judge, summarize
from scaleout.probe.verdict import (
    RULES,
    Expectation,
    Observed,
    decide,
    keys_served,
    replica_order,
    routed_replicas,
    split_pool,
)
from scaleout.targets.status import ServiceStatus
from tests.helpers import ROOT
from tests.unit.probe.test_stats import samples_of

DOCS = ROOT / "docs" / "probe-json.md"

THREE = ("backend-1", "backend-2", "backend-3")
ERR0 = {"connect": 0, "timeout": 0, "reset": 0, "protocol": 0}


def seen(counts: dict[str, int], *, failed: int = 0, keys: dict[int, set[str]] | None = None,
         errors: dict[str, int] | None = None, status_codes: dict[str, int] | None = None,
         unattributed: int = 0) -> Observed:
    ok = sum(counts.values()) + unattributed
    return Observed(requests=ok + failed, ok=ok, failed=failed, counts=counts, errors=errors or ERR0,
                    status_codes=status_codes or {"200": ok},
                    keys={k: frozenset(v) for k, v in (keys or {}).items()})


def rules_of(v) -> list[str]:
    return [f.rule for f in v.findings]


def even(n: int = 300, names=THREE) -> dict[str, int]:
    return {name: n // len(names) for name in names}


# (id, observed, expectation, the rules that must fire: exactly these, in this order)
CASES = [
    ("even-round-robin-passes", seen(even()), Expectation(replicas=THREE), []),
    ("no-requests", seen({}), Expectation(replicas=None), ["no_requests"]),
    ("failed-requests", seen(even(), failed=3, errors={**ERR0, "reset": 2}, status_codes={"200": 300, "502": 1}),
     Expectation(replicas=THREE), ["failed_requests"]),
    ("failed-within-allowance", seen(even(), failed=3), Expectation(replicas=THREE, max_failed=3), []),
    ("no-x-upstream-addr", seen({}, unattributed=300), Expectation(replicas=None), ["no_upstream_header"]),
    ("no-x-upstream-addr-in-a-project", seen({}, unattributed=300), Expectation(replicas=THREE),
     ["no_upstream_header", "replica_idle", "replica_idle", "replica_idle"]),
    ("replica-dropped", seen({"backend-1": 150, "backend-3": 150}), Expectation(replicas=THREE),
     ["replica_idle", "share_off", "share_off"]),
    ("replica-dropped-wide-tolerance", seen({"backend-1": 150, "backend-3": 150}),
     Expectation(replicas=THREE, tolerance=10), ["replica_idle"]),
    ("uneven-share", seen({"backend-1": 200, "backend-2": 50, "backend-3": 50}), Expectation(replicas=THREE),
     ["share_off", "share_off", "share_off"]),
    ("uneven-within-tolerance", seen({"backend-1": 120, "backend-2": 90, "backend-3": 90}),
     Expectation(replicas=THREE), []),
    ("weights-honoured", seen({"backend-1": 300, "backend-2": 100, "backend-3": 100}),
     Expectation(replicas=THREE, weights={"backend-1": 3}), []),
    ("weights-ignored", seen(even(500)), Expectation(replicas=THREE, weights={"backend-1": 3}),
     ["share_off", "share_off", "share_off"]),
    ("backup-idle-passes", seen({"backend-1": 150, "backend-2": 150}),
     Expectation(replicas=THREE, backups=("backend-3",)), []),
    ("backup-served", seen(even()), Expectation(replicas=THREE, backups=("backend-3",), tolerance=10),
     ["backup_served"]),
    ("backups-take-over-when-no-primary-is-healthy", seen({"backend-3": 150, "backend-4": 150}),
     Expectation(replicas=("backend-3", "backend-4"), backups=("backend-3", "backend-4")), []),
    ("unrouted-replica-served", seen({"backend-1": 100, "backend-2": 100, "backend-3": 100}),
     Expectation(replicas=("backend-1", "backend-3"), tolerance=10), ["unexpected_replica"]),
    ("running-replicas-the-balancer-does-not-route", seen({"backend-1": 150, "backend-2": 150}),
     Expectation(replicas=("backend-1", "backend-2"), unrouted=("backend-3", "backend-4")), ["unrouted_replica"]),
    ("an-unrouted-replica-that-served-is-no-idle-one", seen(even()),
     Expectation(replicas=THREE, unrouted=("backend-3",)), []),
    ("foreign-address-served", seen({**even(), "10.1.2.3:8000": 3}), Expectation(replicas=THREE),
     ["unexpected_replica"]),
    ("hash-without-keys", seen(even()), Expectation(strategy="hash", replicas=THREE), ["hash_without_keys"]),
    ("hash-keys-stick-and-spread", seen(even(), keys={0: {"backend-1"}, 1: {"backend-2"}, 2: {"backend-1"}}),
     Expectation(strategy="hash", replicas=THREE), []),
    ("hash-key-split", seen(even(), keys={0: {"backend-1", "backend-2"}, 1: {"backend-3"}}),
     Expectation(strategy="hash", replicas=THREE), ["key_split"]),
    ("hash-all-keys-on-one-replica", seen({"backend-2": 300}, keys={k: {"backend-2"} for k in range(12)}),
     Expectation(strategy="hash", replicas=THREE), ["keys_on_one_replica"]),
    ("hash-one-replica-routed", seen({"backend-2": 300}, keys={k: {"backend-2"} for k in range(12)}),
     Expectation(strategy="hash", replicas=("backend-2",)), []),
    ("ip-hash-one-client-one-replica", seen({"backend-2": 300}), Expectation(strategy="ip_hash", replicas=THREE), []),
    ("ip-hash-split", seen({"backend-1": 200, "backend-2": 100}), Expectation(strategy="ip_hash", replicas=THREE),
     ["ip_hash_split"]),
    ("deviation-at-the-tolerance-passes", seen({"backend-1": 150, "backend-2": 50, "backend-3": 100}),
     Expectation(replicas=THREE, tolerance=0.5), []),
    ("hash-two-replicas-all-keys-on-one", seen({"backend-2": 300}, keys={k: {"backend-2"} for k in range(12)}),
     Expectation(strategy="hash", replicas=("backend-1", "backend-2")), ["keys_on_one_replica"]),
    ("hash-failed-requests-and-split-keys", seen(even(), failed=2, keys={0: {"backend-1", "backend-3"}}),
     Expectation(strategy="hash", replicas=THREE), ["failed_requests", "key_split"]),
    ("sticky-strategies-skip-the-spread-rules", seen({"backend-1": 290, "backend-2": 10},
                                                      keys={0: {"backend-1"}, 1: {"backend-2"}}),
     Expectation(strategy="hash", replicas=THREE), []),
]


@pytest.mark.parametrize("observed, expect, rules", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_way_to_fail(observed, expect, rules):
    v = decide(observed, expect)
    assert rules_of(v) == rules, v.reasons
    assert v.verdict == ("fail" if rules else "pass")
    assert len(v.reasons) == len(rules) and all(v.reasons)


def test_every_rule_has_a_failing_case_and_is_documented():
    fired = {r for c in CASES for r in c[3]} | {"cache_headers"}  # cache: test_failed_cache_checks_fail_the_verdict
    assert fired == set(RULES) and len(RULES) == len(set(RULES))
    table = DOCS.read_text().split("| rule id |", 1)[1].split("\n\n", 1)[0]  # the table of "The verdict"
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert sorted(documented) == sorted(RULES)


def test_unrouted_replicas_are_named_in_the_reason():
    v = decide(seen({"backend-1": 300}), Expectation(replicas=("backend-1",), unrouted=("backend-4", "backend-5")))
    assert v.reasons == ["backend-4, backend-5 run and are healthy but got no traffic: the balancer does not route "
                         "to them (`scaleout up` reloads it)"]
    v = decide(seen({"backend-1": 300}), Expectation(replicas=("backend-1",), unrouted=("backend-2",)))
    assert v.reasons == ["backend-2 runs and is healthy but got no traffic: the balancer does not route to it "
                         "(`scaleout up` reloads it)"]


def test_unrouted_replicas_are_those_running_healthy_and_not_routed():
    from scaleout.probe.verdict import unrouted_replicas
    from scaleout.targets.status import ServiceStatus

    def r(name, state="running", health="healthy", routed=False):
        return ServiceStatus(name, name, state, health, None, "backend", routed)

    replicas = [r("backend-1", routed=True), r("backend-2"), r("backend-3", health="none"),
                r("backend-4", routed=None), r("backend-5", state="exited"), r("backend-6", health="starting"),
                r("backend-7", health="unhealthy")]
    assert unrouted_replicas(replicas) == ["backend-2", "backend-3"]


def test_one_failed_request_fails_by_default():
    assert rules_of(decide(seen(even(), failed=1), Expectation(replicas=THREE))) == ["failed_requests"]
    assert rules_of(decide(seen(even(), failed=1, status_codes={"200": 300, "400": 1}),
                           Expectation(replicas=THREE, max_failed=1))) == []


def test_failed_requests_list_transport_errors_and_error_statuses():
    v = decide(seen(even(), failed=3, errors={**ERR0, "connect": 1}, status_codes={"200": 300, "301": 2, "399": 1,
                                                                                     "400": 1, "199": 1}),
               Expectation(replicas=THREE))
    assert v.reasons == ["3 of 303 requests failed (connect 1; HTTP 400: 1, HTTP 199: 1)"]
    v = decide(seen(even(), failed=1, status_codes={"200": 299, "500": 1}), Expectation(replicas=THREE))
    assert v.reasons == ["1 of 301 requests failed (HTTP 500: 1)"]


EXACT = [
    (seen({}), Expectation(), "no request was sent"),
    (seen(even(), keys={}), Expectation(strategy="hash", replicas=THREE),
     "strategy hash: run the probe with --sticky-keys K to check stickiness"),
    (seen({"backend-1": 10, "backend-2": 10}), Expectation(strategy="ip_hash"),
     "ip_hash: requests from one client address reached more than one replica"),
    (seen({"backend-1": 30}, keys={k: {"backend-1"} for k in range(5)}), Expectation(strategy="hash", replicas=THREE),
     "5 distinct keys all landed on one replica: no spread"),
    (seen({}, unattributed=7), Expectation(),
     "no response carried X-Upstream-Addr: is the target a scaleout balancer?"),
    (seen({**even(), "backend-4": 5}), Expectation(replicas=THREE, tolerance=10),
     "backend-4 served 5 requests, but the balancer should not route to it now (it is not a running, healthy, "
     "routed replica of this project)"),
]


@pytest.mark.parametrize("observed, expect, message", EXACT, ids=[m[:30] for _, _, m in EXACT])
def test_exact_messages(observed, expect, message):
    assert decide(observed, expect).reasons == [message]


def test_messages_name_the_problem():
    v = decide(seen({"backend-1": 150, "backend-3": 150}), Expectation(replicas=THREE))
    assert v.reasons[0] == "replica backend-2 served no request"
    assert "replica backend-1 got 50.0% of requests, expected 33.3% ± 30% (relative)" in v.reasons
    v = decide(seen(even()), Expectation(replicas=THREE, backups=("backend-3",), tolerance=10))
    assert v.reasons == ["backup replica backend-3 served 100 requests while primaries were healthy"]
    v = decide(seen(even(), failed=4, errors={**ERR0, "reset": 1, "timeout": 2}, status_codes={"200": 300, "502": 1}),
               Expectation(replicas=THREE))
    assert v.reasons == ["4 of 304 requests failed (timeout 2, reset 1; HTTP 502: 1)"]
    v = decide(seen(even(), keys={3: {"backend-1", "backend-2"}, 7: {"backend-1", "backend-3"}, 9: {"backend-2"}}),
               Expectation(strategy="hash", replicas=THREE))
    assert v.reasons == ["2 key(s) were served by more than one replica (e.g. key 3)"]
    v = decide(seen({**even(), "backend-4": 5}), Expectation(replicas=THREE, tolerance=10))
    assert v.reasons[0].startswith("backend-4 served 5 requests, but the balancer should not route to it")
    v = decide(seen({}, unattributed=3), Expectation())
    assert "X-Upstream-Addr" in v.reasons[0]


def test_spread_and_sticky_summaries():
    v = decide(seen({"backend-1": 120, "backend-2": 90, "backend-3": 90}), Expectation(replicas=THREE))
    assert v.spread["max_relative_deviation"] == 0.2 and v.spread["tolerance"] == 0.3
    assert v.spread["chi_square_p"] == pytest.approx(0.0498, abs=1e-4)  # chi2 = 6 with 2 degrees of freedom
    v = decide(seen({"backend-1": 7, "backend-2": 5, "backend-3": 5}), Expectation(replicas=THREE))
    assert v.spread["max_relative_deviation"] == 0.2353 and v.verdict == "pass"  # 7 against 17/3
    assert v.sticky is None
    v = decide(seen(even(), keys={0: {"backend-1", "backend-2"}, 1: {"backend-3"}}),
               Expectation(strategy="ip_hash", replicas=THREE, tolerance=0.5))
    assert v.spread == {"max_relative_deviation": None, "chi_square_p": None, "tolerance": 0.5}
    assert v.sticky == {"keys": 2, "keys_split": 1, "replicas_used": 3}


def test_an_idle_replica_shows_in_the_spread():
    v = decide(seen({"backend-1": 150, "backend-3": 150}), Expectation(replicas=THREE))
    assert v.spread["max_relative_deviation"] == 1.0 and v.spread["chi_square_p"] < 1e-9


def test_without_a_project_the_replicas_that_answered_are_the_pool():
    assert split_pool(Expectation(), {"backend-10": 1, "backend-2": 1, "10.0.0.9:80": 1}) == (
        ["backend-2", "backend-10", "10.0.0.9:80"], True)
    assert split_pool(Expectation(replicas=("backend-1", "backend-2"), backups=("backend-2",)), {}) == (
        ["backend-1"], True)
    assert split_pool(Expectation(replicas=("backend-2",), backups=("backend-2",)), {}) == (["backend-2"], False)
    assert replica_order("backend-9") < replica_order("backend-10") < replica_order("10.0.0.1:8000")
    assert sorted(["web-a-10", "10.0.0.2:80", "web-a-9", "7", "10.0.0.1:80"], key=replica_order) == [
        "web-a-9", "web-a-10", "10.0.0.1:80", "10.0.0.2:80", "7"]
    assert sorted(["backend-1000001", "10.0.0.1:80", "backend-2"], key=replica_order) == [
        "backend-2", "backend-1000001", "10.0.0.1:80"]


def test_routed_replicas_are_running_healthy_and_in_the_balancer():
    def svc(name, state="running", health="healthy", routed=True):
        return ServiceStatus(name, f"p-{name}-1", state, health, "10.0.0.2:8000", "backend", routed)

    replicas = [svc("backend-1"), svc("backend-2", routed=False), svc("backend-3", health="unhealthy"),
                svc("backend-4", state="exited"), svc("backend-5", health="starting"), svc("backend-6", health="none"),
                svc("backend-7", routed=None)]
    assert routed_replicas(replicas) == ["backend-1", "backend-6", "backend-7"]


def test_keys_served_counts_only_answers_that_named_a_replica():
    samples = [Sample(0.001, 200, "10.0.0.2:8000", key=1), Sample(0.001, 200, "10.0.0.3:8000", key=1),
               Sample(0.001, 200, "10.0.0.3:8000", key=0),
               Sample(0.001, 0, "", "reset", key=2), Sample(0.001, 200, "", key=3),
               Sample(0.001, 200, "10.0.0.9:8000", key=4), Sample(0.001, 200, "10.0.0.2:8000", key=-1),
               Sample(0.001, 0, "10.0.0.3:8000", "timeout", key=4)]
    assert keys_served(samples, {"10.0.0.2:8000": "backend-1", "10.0.0.3:8000": "backend-2"}) == {
        0: frozenset({"backend-2"}), 1: frozenset({"backend-1", "backend-2"}), 4: frozenset({"10.0.0.9:8000"})}


# --- through judge: summarized samples, as `probe` sees them -----------------------------------

NAMES = {"10.0.0.2:8000": "backend-1", "10.0.0.3:8000": "backend-2", "10.0.0.4:8000": "backend-3"}


def result_of(rows) -> tuple[ProbeResult, object]:
    s = samples_of(rows)
    return summarize(s, 1.0, "http://127.0.0.1:1", NAMES), s


def keyed(rows_with_keys):
    """rows: (upstream, key) -> samples with sticky keys"""
    s = samples_of([(0.001, 200, up, 0) for up, _ in rows_with_keys], keys=[k for _, k in rows_with_keys])
    return summarize(s, 1.0, "http://127.0.0.1:1", NAMES), s


def test_judge_passes_an_even_spread_and_sets_the_result():
    r, s = result_of([(0.001, 200, up, 0) for up in NAMES] * 100)
    judge(r, s, strategy="least_conn", expected=list(THREE))
    assert (r.verdict, r.reasons, r.failed_rules, r.strategy) == ("pass", [], [], "least_conn")
    assert r.spread["max_relative_deviation"] == 0.0


def test_judge_names_each_broken_promise():
    r, s = result_of([(0.001, 200, "10.0.0.2:8000", 0)] * 200 + [(0.001, 200, "10.0.0.3:8000", 0)] * 100)
    judge(r, s, strategy="round_robin", expected=list(THREE))
    assert r.verdict == "fail" and r.failed_rules == ["replica_idle", "share_off"]
    assert r.reasons[0] == "replica backend-3 served no request"

    r, s = keyed([("10.0.0.2:8000", k % 4) for k in range(40)] + [("10.0.0.3:8000", 2)])
    judge(r, s, strategy="hash", expected=list(THREE))
    assert r.failed_rules == ["key_split"] and r.sticky == {"keys": 4, "keys_split": 1, "replicas_used": 2}

    r, s = keyed([("10.0.0.4:8000", k % 6) for k in range(60)])
    judge(r, s, strategy="hash", expected=list(THREE))
    assert r.failed_rules == ["keys_on_one_replica"]

    r, s = result_of([(0.001, 200, "", 0)] * 50)
    judge(r, s, strategy="round_robin", expected=None)
    assert r.failed_rules == ["no_upstream_header"] and r.unattributed == 50


def test_failed_cache_checks_fail_the_verdict():
    r, s = result_of([(0.001, 200, up, 0) for up in NAMES] * 10)
    good = {"path": "/sw.js", "kind": "service_worker", "ok": True, "detail": "Cache-Control: no-cache"}
    judge(r, s, strategy="round_robin", expected=list(THREE), cache_checks=[good])
    assert r.verdict == "pass" and r.cache_checks == [good]
    bad = {"path": "/static/app.0123456789ab.css", "kind": "fingerprinted_asset", "ok": False, "detail": "HTTP 404"}
    judge(r, s, strategy="round_robin", expected=list(THREE), cache_checks=[good, bad])
    assert r.verdict == "fail" and r.failed_rules == ["cache_headers"]
    assert r.reasons == ["cache headers: /static/app.0123456789ab.css: HTTP 404"]


def test_a_replica_answering_from_two_addresses_counts_once_with_both():
    s = samples_of([(0.001, 200, "10.0.0.2:8000", 0)] * 50 + [(0.001, 200, "10.1.0.2:8000", 0)] * 50
                   + [(0.001, 200, "10.0.0.3:8000", 0)] * 100)
    r = summarize(s, 1.0, "http://127.0.0.1:1", {"10.0.0.2:8000": "backend-1", "10.1.0.2:8000": "backend-1",
                                                  "10.0.0.3:8000": "backend-2"})
    judge(r, s, strategy="round_robin", expected=["backend-1", "backend-2"])
    assert r.verdict == "pass", r.reasons
