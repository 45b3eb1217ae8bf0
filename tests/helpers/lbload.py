"""Helpers for the load-balancer e2e tests: `hey` running in the background, and what it reports."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field


@dataclass
class HeyResult:
    status_codes: dict[int, int]
    errors: dict[str, int] = field(default_factory=dict)  # error line -> count
    p99_s: float | None = None
    text: str = ""

    @property
    def responses(self) -> int:
        return sum(self.status_codes.values())

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.status_codes.items() if not 200 <= code < 300)


def parse_hey(text: str) -> HeyResult:
    """Status code distribution, error distribution and p99 latency from hey's text report."""
    codes = {int(c): int(n) for c, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses\s*$", text, re.M)}
    errors: dict[str, int] = {}
    if "Error distribution:" in text:
        for n, line in re.findall(r"^\s*\[(\d+)\]\s+(.+)$", text.split("Error distribution:", 1)[1], re.M):
            errors[line.strip()] = int(n)
    m = re.search(r"^\s*99%+ in ([0-9.]+) secs", text, re.M)
    return HeyResult(codes, errors, float(m.group(1)) if m else None, text)


class HeyLoad:
    """`hey -z LIMIT -c C URL` in the background; leaving the block interrupts it (hey then prints its
    report, as on Ctrl-C). The time limit only bounds a test that fails to leave the block."""

    def __init__(self, url: str, concurrency: int = 8, limit_s: int = 240):
        hey = shutil.which("hey")
        assert hey, "hey is not installed (apt-get install hey)"
        self.cmd = [hey, "-z", f"{limit_s}s", "-c", str(concurrency), "-t", "10", url]
        self.result: HeyResult | None = None

    def __enter__(self) -> HeyLoad:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.result = parse_hey(out)
