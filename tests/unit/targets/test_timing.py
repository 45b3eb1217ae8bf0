"""`up`'s phase timings: what `--json` carries under `timings` and the summary line people read."""

from __future__ import annotations

import pytest

from scaleout.targets.status import StackStatus
from scaleout.targets.timing import Timings, summary


def test_phases_add_up_and_are_listed_in_order_with_the_total_last():
    clock = Timings()
    with clock.phase("roll"):
        pass
    with clock.phase("build"):
        pass
    with clock.phase("roll"):
        pass
    out = clock.to_dict()
    assert list(out) == ["build_s", "roll_s", "total_s"]
    assert all(v >= 0 for v in out.values())
    assert out["total_s"] >= out["build_s"]


def test_a_phase_that_raises_is_still_timed():
    clock = Timings()
    with pytest.raises(RuntimeError), clock.phase("healthy"):
        raise RuntimeError("boom")
    assert "healthy_s" in clock.to_dict()


def test_summary_names_the_build_apart_from_the_roll():
    text = summary({"build_s": 3.14, "roll_s": 12.9, "total_s": 17.0})
    assert text == "build 3.1 s, rolling update 12.9 s (total 17.0 s)"


def test_status_json_has_timings_only_after_up():
    st = StackStatus("p", None)
    assert "timings" not in st.to_dict()
    st.timings = {"roll_s": 1.0, "total_s": 2.0}
    assert st.to_dict()["timings"] == {"roll_s": 1.0, "total_s": 2.0}
