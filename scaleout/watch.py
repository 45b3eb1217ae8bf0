"""`scaleout watch`: rebuild and roll out the backend whenever its build folder changes.

The folder is watched with watchfiles (OS file notifications, no polling by hand). Changes are filtered
the way `docker build` filters its context, by the folder's `.dockerignore` (so a change Docker would
not even send triggers nothing), and a burst of saves is debounced into one rebuild: changes are
collected until none arrived for `step_ms`, for at most `debounce_ms`. Each batch runs the same `up`
as the command (build, then the rolling update of targets/rolling.py). A change saved while a build
or an update runs is kept by the watcher and starts the next round afterwards.

A failed build or a replica that never becomes healthy leaves the running version serving: the error
is shown and watching goes on. Ctrl-C stops watching and leaves the stack running.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scaleout.errors import ScaleoutError

# never part of a rebuild, whatever .dockerignore says: scaleout's own output (written by every `up`,
# inside the context when backend.build is the project folder itself) and version control
ALWAYS_IGNORED = (".scaleout", ".git")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    exclude: bool  # a `!pattern` line: the path is sent after all


def _translate(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated relative paths: `*` and `?` never cross a
    `/`, `**` crosses any number of folders, `[...]` is a class, `\\` escapes (Go's filepath.Match)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # `**/` also matches no folder at all
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                body = "^" + body[1:] if body.startswith("^") else body
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _clean(pattern: str) -> str:
    """Docker cleans each pattern like a path: no leading or trailing slash, no `.` segments."""
    parts = [p for p in pattern.strip("/").split("/") if p not in ("", ".")]
    return "/".join(parts)


class DockerIgnore:
    """The paths `docker build` leaves out of a context, by its `.dockerignore` (moby's patternmatcher:
    the last matching line wins, and a pattern that matches a folder leaves out everything below it)."""

    def __init__(self, text: str = "") -> None:
        self.rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = line.startswith("!")
            pattern = _clean(line[1:].strip() if exclude else line)
            if pattern:
                self.rules.append(_Rule(_translate(pattern), exclude))

    @classmethod
    def of(cls, context: Path) -> DockerIgnore:
        try:
            return cls((context / ".dockerignore").read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return cls()

    def ignored(self, rel: str) -> bool:
        """Whether the relative path `rel` (slash-separated) stays out of the build context."""
        parts = PurePosixPath(rel).parts
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for rule in self.rules:
            if any(rule.regex.match(p) for p in prefixes):
                result = not rule.exclude
        return result


class ContextFilter:
    """watchfiles filter: only changes that reach the build context of the backend image count.
    `.dockerignore` is re-read when it changes itself (a change to it is a change of the context)."""

    def __init__(self, context: Path, dockerfile: str) -> None:
        self.context = context.resolve()
        self.dockerfile = dockerfile
        self.ignore = DockerIgnore.of(self.context)

    def relative(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.context).as_posix()
        except ValueError:
            return None

    def __call__(self, _change: object, path: str) -> bool:
        rel = self.relative(path)
        if rel is None or rel == ".":
            return False
        if rel.split("/", 1)[0] in ALWAYS_IGNORED:
            return False
        if rel == ".dockerignore":
            self.ignore = DockerIgnore.of(self.context)
            return True
        if rel == self.dockerfile:  # docker build always reads it, whatever .dockerignore says
            return True
        return not self.ignore.ignored(rel)


def _interrupt_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop watching as KeyboardInterrupt, even when the process was started
    with SIGINT ignored (a shell's background job: Python then installs no handler of its own)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def describe(paths: list[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def watch_backend(context: Path, dockerfile: str, deploy: Callable[[], None], *,
                  progress: Callable[[str], None], message: Callable[[str], None],
                  debounce_ms: int = 1600, step_ms: int = 300, stop_event=None) -> int:
    """Call `deploy` after every debounced batch of changes to the build context, until Ctrl-C or
    `stop_event`. A ScaleoutError from `deploy` is shown and watching goes on. Ctrl-C while waiting
    returns (how many rounds ran); Ctrl-C during a build or an update propagates as KeyboardInterrupt,
    after the update has put the balancer back on the replicas that run."""
    import watchfiles

    _interrupt_on_signals()
    flt = ContextFilter(context, dockerfile)
    rounds = 0
    progress(f"watching {context} for changes (.dockerignore honoured); Ctrl-C stops watching, the stack keeps running")
    changes_seen = watchfiles.watch(flt.context, watch_filter=flt, debounce=debounce_ms, step=step_ms,
                                    stop_event=stop_event, raise_interrupt=True)
    while True:
        try:
            changes = next(changes_seen)
        except StopIteration:
            return rounds
        except KeyboardInterrupt:  # while waiting for changes: nothing half-done, a normal way to stop
            message("stopped watching; the stack keeps running (`scaleout down` removes it)")
            return rounds
        paths = sorted({rel for _, p in changes if (rel := flt.relative(p)) is not None})
        rounds += 1
        t0 = time.monotonic()
        progress(f"changed: {describe(paths)}: rebuilding and rolling out")
        try:
            deploy()
        except ScaleoutError as exc:
            message(f"error: {exc}")
            message("the running version keeps serving; watching for the next change")
            continue
        progress(f"rolled out in {time.monotonic() - t0:.1f}s; watching for the next change")
