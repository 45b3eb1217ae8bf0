"""Generated files on disk: confined paths, atomic writes, the ledger, the project lock.

Every file scaleout writes, copies or removes goes through this module, for `render`, `up` and
`export` alike:
- a path is checked component by component with lstat against its root: no absolute path, no '..',
  no symlink anywhere below the root (a cloned repository may hold crafted links);
- a `Plan` (every output, computed first) is checked as a whole for hand edits and unsafe paths before
  the first byte is written, so a refusal writes nothing;
- files are written atomically (a temporary file in the same folder, then rename), with the user's umask;
- the ledger (`.scaleout/checksums.json`, or the manifest of an `--out` folder) records each file with
  its checksum; only a file recorded there, whose bytes still match, is ever removed or replaced
  without --force. A ledger is a file in a cloned repository too: only the names scaleout itself
  generates in that folder (`owned`: under `.scaleout/`, or an export's own file names) are ever taken
  from it; any other entry (`.git/HEAD`, a source file, a link) is ignored, never removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scaleout.errors import ConfigError, LockedError, RenderConflictError, ScaleoutError, UnsafePathError, UsageError
from scaleout.layout import CHECKSUMS, CONFIG_FILE, OUT_DIR

Content = str | bytes
MAX_LEDGER_BYTES = 4 * 1024 * 1024


def _bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def sha256(content: Content) -> str:
    return hashlib.sha256(_bytes(content)).hexdigest()


def _sha256_file(path: Path) -> str:
    """The checksum of a file read in chunks: a committed multi-GB file under .scaleout/ costs no memory."""
    digest = hashlib.sha256()
    # non-blocking: a FIFO swapped in after the caller's lstat cannot hang the open
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- confinement -----------------------------------------------------------------------------------

def check_relative(rel: str) -> PurePosixPath:
    """A relative POSIX path with no empty, '.' or '..' segment, or UnsafePathError."""
    p = PurePosixPath(rel)
    if not rel or rel.startswith("/") or "\0" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
        raise UnsafePathError(f"refusing the path {rel!r}: it must stay inside its folder")
    return p


def confined(root: Path, rel: str, *, what: str = "file") -> Path:
    """`root / rel` after checking, with lstat on each existing component below `root`, that no
    component is a symlink and every existing parent is a real folder. `root` itself is trusted
    (resolved by the caller). Raises UnsafePathError naming the offending component."""
    parts = check_relative(rel).parts
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return root.joinpath(*parts)
        except OSError as exc:
            raise UnsafePathError(f"cannot inspect {current}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(
                f"{current} is a symbolic link: scaleout does not write, copy or remove through links",
                hint=f"remove the link (scaleout recreates the {what} as a real file or folder)",
            )
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{current} is not a folder")
    return current


def check_no_links(path: Path, *, what: str, trusted: Path | None = None) -> None:
    """Refuse a folder the user named (`init DIR`, `export --out DIR`) when a component of its path, as
    written, is a symbolic link: a cloned repository may commit `deploy -> ~/.ssh`. The way to `trusted`
    (the folder the user works in: the current one, the project), the home folder's own path and the links
    the system keeps at the top of the filesystem (root-owned, such as /tmp on macOS) are the user's own,
    and allowed. `..` is taken after the folder before it was checked to be real."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    base = trusted if trusted is not None else Path.cwd()
    allowed = {Path(p) for p in _prefixes(Path.home()) + _prefixes(base if base.is_absolute() else Path.cwd() / base)}
    current = Path(absolute.anchor)
    for part in absolute.parts[1:]:
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return  # created by scaleout from here on: real folders
        except OSError as exc:
            raise UnsafePathError(f"{what}: cannot inspect {current}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            system = current.parent == Path(current.anchor) and st.st_uid == 0
            if not (system or current in allowed):
                raise UnsafePathError(
                    f"{what}: {current} is a symbolic link; scaleout does not write through links",
                    hint="name the real folder, or remove the link",
                )


def _prefixes(path: Path) -> list[str]:
    return [str(p) for p in (path, *path.parents)]


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, with every link resolved, is `root` or below it (root resolved by the caller)."""
    try:
        real = path.resolve(strict=False)
    except (OSError, RuntimeError):  # a link loop
        return False
    return real == root or root in real.parents


def read_capped(path: Path, *, display: str, limit: int = 1 << 20, error: type[ScaleoutError] = ConfigError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes: the one bounded reader of untrusted files
    (scaleout.yaml, .env, env files, Compose files, Dockerfiles, static files, certificates).

    Opened with O_NONBLOCK so that a FIFO cannot block the open, then checked with fstat on the open
    descriptor (no race with a swapped path); a symlink is followed, and what it points at must be a
    regular file too, so a link to /dev/zero is refused before a single byte is read. Never more than
    `limit` + 1 bytes are read, also from a file that grows meanwhile. Problems raise `error` with
    `display: ...`; a missing file raises FileNotFoundError for the caller to word."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"{display}: cannot be read: {exc.strerror or exc}") from None
    return _read_open(fd, display=display, limit=limit, error=error)


def _read_open(fd: int, *, display: str, limit: int, error: type[ScaleoutError]) -> bytes:
    """Read the open descriptor `fd` (closed here): a regular file of at most `limit` bytes."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket?)"
            raise error(f"{display}: is {kind}; scaleout reads only regular files")
        if st.st_size > limit:
            raise error(f"{display}: is {st.st_size} bytes; at most {limit} bytes are allowed")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # the file grew after fstat
            raise error(f"{display}: is larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{display}: cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_beneath(root: Path, rel: str, *, limit: int, display: str,
                 error: type[ScaleoutError] = UnsafePathError) -> bytes:
    """The bytes of `root/rel`, opened once, component by component with O_NOFOLLOW relative to the folder
    opened before it: no symbolic link anywhere below `root` is followed, and what is read is what was
    checked (fstat on the open descriptor, no window between a check of the path and its open). For files
    scaleout itself keeps in the project (the replay secret). A missing file raises FileNotFoundError."""
    parts = check_relative(rel).parts
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    dir_flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow
    file_flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | nofollow
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{display}: cannot open {root}: {exc.strerror or exc}") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, file_flags if last else dir_flags, dir_fd=fd)
            except FileNotFoundError:
                raise
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise error(f"{display}: {'/'.join(parts[:i + 1])} is a symbolic link or not a folder; "
                                "scaleout does not read through links") from None
                raise error(f"{display}: cannot be read: {exc.strerror or exc}") from None
            os.close(fd)
            fd = nxt
        opened, fd = fd, -1
    finally:
        if fd >= 0:
            os.close(fd)
    return _read_open(opened, display=display, limit=limit, error=error)


def read_project_file(root: Path, rel: str, *, max_bytes: int, what: str) -> bytes:
    """A user's file inside the project (an env file, a static file): a regular file whose real path
    stays inside `root`, at most `max_bytes`. Never blocks on a FIFO or a device."""
    path = root / rel
    if not inside(root, path):
        raise UnsafePathError(f"{what} {rel}: it leads outside the project folder (a symbolic link?)")
    try:
        return read_capped(path, display=f"{what} {rel}", limit=max_bytes, error=UnsafePathError)
    except FileNotFoundError:
        raise UnsafePathError(f"{what} {rel}: cannot be read (No such file or directory)") from None


# --- writing -----------------------------------------------------------------------------------------

def atomic_write(path: Path, content: Content, *, mode: int | None = None) -> None:
    """Write text (UTF-8) or bytes to `path` atomically: a temporary file in the same folder, then
    rename. Permissions follow the umask (0666 & ~umask) unless `mode` is given. Refuses to replace a
    symlink or a folder (the rename would replace the link, never write through it, but say so)."""
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{path} is a {'symbolic link' if stat.S_ISLNK(st.st_mode) else 'folder'}; "
                                  "scaleout writes only regular files")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_bytes(content))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Plan:
    """Everything one command will write under a root: path (relative, POSIX) -> content, plus
    recorded files that stay although not written this time (`keep`, e.g. the previous generation of
    fingerprinted assets). Files the ledger recorded that are in neither are removed when unchanged."""

    files: Mapping[str, Content] = field(default_factory=dict)
    keep: frozenset[str] = frozenset()
    modes: Mapping[str, int] = field(default_factory=dict)  # permissions of some files, e.g. 0o600 for a key

    def text(self, rel: str) -> str:
        value = self.files[rel]
        return value if isinstance(value, str) else value.decode("utf-8")

    def __contains__(self, rel: object) -> bool:
        return rel in self.files

    def subset(self, rels: set[str] | frozenset[str]) -> Plan:
        return Plan({k: v for k, v in self.files.items() if k in rels}, self.keep, self.modes)

    def without(self, rels: set[str] | frozenset[str] | tuple[str, ...]) -> Plan:
        return Plan({k: v for k, v in self.files.items() if k not in rels}, self.keep, self.modes)


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # recorded, gone from the plan, but edited: left alone


Owned = Callable[[str], bool]


def under_out_dir(rel: str) -> bool:
    """The project ledger's names: files below `.scaleout/` (never the ledger itself)."""
    return rel.startswith(f"{OUT_DIR}/") and rel != CHECKSUMS


class Ledger:
    """The record of generated files under `root`: relative path -> sha256 of what scaleout wrote.
    Entries whose name `owned` rejects are dropped when it is read: scaleout never generated them there."""

    def __init__(self, root: Path, rel: str = CHECKSUMS, extra: dict | None = None,
                 owned: Owned = under_out_dir) -> None:
        self.root = root
        self.rel = rel
        self.extra = extra or {}
        self.owned = owned
        self.files = self._read()

    def _read(self) -> dict[str, str]:
        try:
            path = confined(self.root, self.rel, what="ledger")
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_LEDGER_BYTES:
                return {}
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data.get("files", {}) if isinstance(data, dict) else {}
        except (OSError, ValueError, UnsafePathError):
            return {}
        out = {}
        for k, v in files.items() if isinstance(files, dict) else ():
            with contextlib.suppress(UnsafePathError):
                if isinstance(k, str) and isinstance(v, str) and k != self.rel and self.owned(k):
                    check_relative(k)
                    out[k] = v
        return out

    def current_sha(self, rel: str) -> str | None:
        """The checksum of the file on disk now (None when missing; UnsafePathError through a link)."""
        path = confined(self.root, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return "not-a-file"
        return _sha256_file(path)

    def edited(self, plan: Plan) -> list[str]:
        """Files the plan would replace or remove that differ from what scaleout last wrote there, or
        that exist without having been written by scaleout (and differ from the plan)."""
        out = []
        for rel in sorted(set(plan.files) | set(self.files)):
            if rel in plan.keep and rel not in plan.files:
                continue
            now = self.current_sha(rel)
            if now is None:
                continue
            if rel in self.files:
                if now != self.files[rel]:
                    out.append(rel)
            elif now != sha256(plan.files[rel]):
                out.append(rel)
        return out

    def save(self) -> None:
        data = {**self.extra, "files": dict(sorted(self.files.items()))}
        atomic_write(confined(self.root, self.rel, what="ledger"), json.dumps(data, indent=2) + "\n")


def write_plan(root: Path, plan: Plan, *, force: bool = False, prune: bool = True, ledger_rel: str = CHECKSUMS,
               ledger_extra: dict | None = None, mode: int | None = None, dry_run: bool = False,
               conflict_hint: str = "move your changes into scaleout.yaml, or pass --force to overwrite them",
               owned: Owned = under_out_dir) -> WriteResult:
    """Check every path and every hand edit first, then write what changed, remove recorded files the
    plan no longer has (only when unchanged since scaleout wrote them, and only names `owned` accepts:
    files scaleout generates in that folder), and save the ledger.
    A refusal (UnsafePathError, RenderConflictError) writes nothing; `dry_run` only checks."""
    ledger = Ledger(root, ledger_rel, ledger_extra, owned)
    for rel in sorted(set(plan.files) | {ledger_rel}):
        confined(root, rel)
    for rel in sorted(set(ledger.files) - set(plan.files)):
        try:  # a recorded name that now leads through a link, or is no file: never touched, forgotten
            confined(root, rel)
        except UnsafePathError:
            del ledger.files[rel]
    edited = ledger.edited(plan) if not force else []
    replaced = [rel for rel in edited if rel in plan.files and rel in ledger.files]
    foreign = [rel for rel in edited if rel in plan.files and rel not in ledger.files]
    if replaced or foreign:
        lines = []
        if replaced:
            lines.append("generated file(s) were edited by hand: " + ", ".join(replaced))
        if foreign:
            lines.append("refusing to overwrite file(s) that scaleout did not write: "
                         + ", ".join(str(root / rel) for rel in foreign))
        raise RenderConflictError("\n".join(lines), hint=conflict_hint)
    result = WriteResult()
    if dry_run:
        return result
    for rel, content in sorted(plan.files.items()):
        path = confined(root, rel)
        data = _bytes(content)
        file_mode = plan.modes.get(rel, mode)
        if ledger.current_sha(rel) == sha256(data):
            result.unchanged.append(rel)
            if rel in plan.modes and stat.S_IMODE(os.lstat(path).st_mode) != file_mode:
                os.chmod(path, file_mode)  # a private key stays private even when its bytes did not change
        else:
            atomic_write(path, data, mode=file_mode)
            result.written.append(rel)
        ledger.files[rel] = sha256(data)
    if prune:
        for rel in sorted(set(ledger.files) - set(plan.files) - set(plan.keep)):
            now = ledger.current_sha(rel)
            if now is None or now == "not-a-file":
                del ledger.files[rel]
            elif now == ledger.files[rel]:
                os.unlink(confined(root, rel))
                _prune_empty(root, (root / rel).parent)
                del ledger.files[rel]
                result.removed.append(rel)
            else:
                result.kept.append(rel)
                del ledger.files[rel]  # edited by the user: theirs now, never removed later
    ledger.save()
    return result


def report_removed(result: WriteResult, say: Callable[[str], None]) -> None:
    """One line per file a write removed (no longer generated), and per stale file left because it was edited."""
    for rel in result.removed:
        say(f"removed {rel} (no longer generated)")
    for rel in result.kept:
        say(f"kept {rel} (no longer generated, but edited by hand: yours now)")


def _prune_empty(root: Path, folder: Path) -> None:
    """Remove folders left empty by a removal, up to (not including) the ledger's root folder."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


# --- the project lock ----------------------------------------------------------------------------

@contextlib.contextmanager
def project_lock(project_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One scaleout at a time changes a project: a second one waits `wait_s` then fails clearly.
    The lock is taken on scaleout.yaml itself, so that taking it writes no file."""
    if wait_s < 0:
        raise UsageError(f"--lock-wait: must be 0 or more seconds (got {wait_s:g})")
    try:
        fd = os.open(project_dir / CONFIG_FILE, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"{project_dir / CONFIG_FILE}: cannot be opened ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"another scaleout command is changing project {project_dir.name} "
                        f"(it holds a lock on {CONFIG_FILE})",
                        hint="wait for it to finish, or pass --lock-wait SECONDS to queue behind it",
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)
