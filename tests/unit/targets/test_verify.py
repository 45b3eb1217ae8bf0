"""The pure half of targets/verify.py: one reading of the balancer's routing and served configuration
against the replicas `up` was asked for."""

from __future__ import annotations

from scaleout.targets.verify import compare

WANTED = ["backend-1", "backend-2", "backend-3"]


def test_exactly_the_wanted_replicas_routed_and_served_is_ok():
    check = compare({"backend-1": True, "backend-2": True, "backend-3": True}, WANTED, "7", "7")
    assert check.ok and check.describe() == ""


def test_a_wanted_replica_not_routed_is_named():
    check = compare({"backend-1": True, "backend-2": False}, WANTED, "7", "7")
    assert not check.ok and check.missing == ("backend-2", "backend-3")
    assert check.describe() == "not routed (no traffic): backend-2, backend-3"


def test_a_replica_still_routed_though_removed_is_named():
    check = compare({"backend-1": True, "backend-2": True, "backend-3": True, "backend-4": True,
                     "backend-5": False}, WANTED, "7", "7")
    assert not check.ok and check.extra == ("backend-4",)
    assert "still routed though not asked for: backend-4" in check.describe()


def test_a_reload_that_did_not_take_is_said():
    check = compare(dict.fromkeys(WANTED, True), WANTED, "6", "7")
    assert not check.ok and "serves configuration 6, but the watcher installed 7" in check.describe()
    assert not compare(dict.fromkeys(WANTED, True), WANTED, None, "7").ok  # no answer through the port
