"""How long each phase of an `up` took: the build apart from everything else, so that a rescale or a
rolling update is judged by its own time (issue 22: a roll stays within (boot + health interval) x
batches + 5 s, the build excluded and reported separately).

Phases are wall-clock seconds, summed when a phase runs more than once. They are reported on `up`'s
progress output as each one ends, once more as a summary line, and under `timings` in `up --json`:

    {"build_s": 3.1, "services_s": 0.4, "start_s": 2.2, "healthy_s": 4.0, "reload_s": 0.3,
     "balancer_s": 0.2, "drain_s": 3.0, "stop_s": 0.6, "roll_s": 12.9, "verify_s": 0.1, "total_s": 27.0}

Only the phases that ran are present; `total_s` (the whole `up`, build included) always is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

# the order phases are listed in, and what a person reads for each
PHASES = {
    "build": "build",
    "services": "services",
    "start": "start replicas",
    "healthy": "health wait",
    "reload": "reload",
    "balancer": "balancer",
    "drain": "drain",
    "stop": "stop removed",
    "roll": "rolling update",
    "verify": "verify",
}


class Timings:
    """Seconds per phase of one `up`, from the moment it was made."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name` (added to what that phase took before)."""
        assert name in PHASES, name
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - t0

    def to_dict(self) -> dict[str, float]:
        """`{phase}_s` for every phase that ran, in PHASES order, then `total_s`."""
        out = {f"{k}_s": round(self.seconds[k], 2) for k in PHASES if k in self.seconds}
        out["total_s"] = round(time.monotonic() - self.began, 2)
        return out


def summary(timings: dict[str, float]) -> str:
    """One line for people: `build 3.1 s, rolling update 12.9 s, ... (total 27.0 s)`."""
    parts = [f"{label} {timings[k + '_s']:.1f} s" for k, label in PHASES.items() if k + "_s" in timings]
    total = timings.get("total_s")
    return ", ".join(parts) + (f" (total {total:.1f} s)" if total is not None else "")
