"""Where the CLI's words go: progress lines and engine output on stderr, results on stdout.
One object per invocation, passed to the code that reports progress (no module globals), so the
CLI can run in process, in tests, more than once."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Console:
    quiet: bool = False
    verbose: bool = False
    err: TextIO = field(default_factory=lambda: sys.stderr)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    t0: float = field(default_factory=time.monotonic)
    _last_log: float = 0.0

    def print(self, text: str = "") -> None:
        """A result, on stdout."""
        print(text, file=self.out, flush=True)

    def message(self, text: str) -> None:
        """A line for the user on stderr, shown even with -q (errors, what was written)."""
        print(text, file=self.err, flush=True)

    def progress(self, msg: str) -> None:
        """A step of a long command. "note: ..." lines say something the user must know (e.g. what is
        exposed): shown even with -q."""
        if not self.quiet or msg.startswith("note:"):
            self.message(f"==> [{time.monotonic() - self.t0:5.1f}s] {msg}")

    def log(self, line: str) -> None:
        """Compose/build output: every line with --verbose, otherwise a glimpse at most every 3 s."""
        if self.verbose:
            self.message(f"    | {line}")
            return
        now = time.monotonic()
        text = line.strip()
        if not self.quiet and text and now - self._last_log >= 3.0:
            self._last_log = now
            self.message(f"    … {text[:110]}{'…' if len(text) > 110 else ''}")
