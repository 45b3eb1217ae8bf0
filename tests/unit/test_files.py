"""The ledger of generated files (scaleout/files.py), call by call: what it writes, refuses, keeps and
removes, and what its messages say. Written against the mutants scripts/mutation.sh found alive: the
CLI tests run files.py in a subprocess, where mutmut cannot see which test reaches which function."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from scaleout import files
from scaleout.errors import ConfigError, LockedError, RenderConflictError, UnsafePathError, UsageError
from scaleout.files import (
    MAX_LEDGER_BYTES,
    Plan,
    atomic_write,
    check_relative,
    confined,
    inside,
    project_lock,
    read_project_file,
    sha256,
)
from scaleout.layout import CHECKSUMS, CONFIG_FILE


def _any_name(rel: str) -> bool:
    return True


# The mechanics below use short names at the root; which names a ledger owns is tested in
# tests/test_ledger_names.py.
def Ledger(*args, **kwargs):  # noqa: N802 - stands in for the class
    return files.Ledger(*args, owned=kwargs.pop("owned", _any_name), **kwargs)


def write_plan(*args, **kwargs):
    return files.write_plan(*args, owned=kwargs.pop("owned", _any_name), **kwargs)


def ledger_on_disk(root: Path, rel: str = CHECKSUMS) -> dict:
    return json.loads((root / rel).read_text(encoding="utf-8"))


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


# --- confinement ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["", "/etc/passwd", "a\0b", "a//b", "./a", "a/./b", "a/../b", "..", "a/"])
def test_check_relative_refuses_paths_that_are_not_plainly_inside(rel):
    with pytest.raises(UnsafePathError, match="must stay inside its folder") as err:
        check_relative(rel)
    assert repr(rel) in str(err.value)


def test_check_relative_keeps_a_plain_path():
    assert str(check_relative("a/b.txt")) == "a/b.txt"


def test_confined_returns_the_whole_path_when_a_middle_folder_is_missing(tmp_path):
    (tmp_path / "a").mkdir()
    assert confined(tmp_path, "a/b/c.txt") == tmp_path / "a" / "b" / "c.txt"


def test_confined_returns_an_existing_file_and_folder(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    assert confined(tmp_path, "d/f") == tmp_path / "d" / "f"
    assert confined(tmp_path, "d") == tmp_path / "d"


def test_confined_names_the_link_and_what_to_recreate(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError) as err:
        confined(tmp_path, "link/f")
    assert f"{tmp_path / 'link'} is a symbolic link" in err.value.message
    assert err.value.hint == "remove the link (scaleout recreates the file as a real file or folder)"
    with pytest.raises(UnsafePathError) as err:
        confined(tmp_path, "link", what="ledger")
    assert "recreates the ledger as" in err.value.hint


def test_confined_refuses_a_file_in_the_middle(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UnsafePathError, match=r"f is not a folder$"):
        confined(tmp_path, "f/g")


def test_inside(tmp_path):
    root = tmp_path / "ab"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "abc").mkdir()
    (root / "out").symlink_to(tmp_path / "abc")
    (root / "loop").symlink_to(root / "loop")
    assert inside(root, root)
    assert inside(root, root / "sub" / "new.txt")
    assert not inside(root, tmp_path / "abc")  # a name that only starts like the root
    assert not inside(root, root / "out" / "x")
    assert not inside(root, root / "loop")


def test_read_project_file(tmp_path):
    (tmp_path / "ok.txt").write_bytes(b"x" * 1024)
    assert read_project_file(tmp_path, "ok.txt", max_bytes=1024, what="env file") == b"x" * 1024
    (tmp_path / "big.txt").write_bytes(b"x" * 2049)
    with pytest.raises(UnsafePathError) as err:
        read_project_file(tmp_path, "big.txt", max_bytes=2048, what="env file")
    assert err.value.message == "env file big.txt: is 2049 bytes; at most 2048 bytes are allowed"
    (tmp_path / "dir").mkdir()
    with pytest.raises(UnsafePathError) as err:
        read_project_file(tmp_path, "dir", max_bytes=2048, what="static file")
    assert err.value.message == "static file dir: is a folder; scaleout reads only regular files"
    with pytest.raises(UnsafePathError) as err:
        read_project_file(tmp_path, "missing.txt", max_bytes=2048, what="env file")
    assert err.value.message == "env file missing.txt: cannot be read (No such file or directory)"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePathError, match="fifo: is not a regular file"):  # and does not block
        read_project_file(tmp_path, "fifo", max_bytes=2048, what="env file")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(UnsafePathError) as err:
        read_project_file(tmp_path, "link/x", max_bytes=2048, what="env file")
    assert err.value.message == "env file link/x: it leads outside the project folder (a symbolic link?)"


def test_read_project_file_reads_a_file_that_grew_to_the_limit_only(tmp_path, monkeypatch):
    # the size check after reading: fstat said small, the read finds more (the file grew meanwhile)
    (tmp_path / "f").write_bytes(b"y" * 3000)
    real_fstat = os.fstat

    def small_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(UnsafePathError) as err:
        read_project_file(tmp_path, "f", max_bytes=2048, what="env file")
    assert err.value.message == "env file f: is larger than 2048 bytes"


# --- writing -----------------------------------------------------------------------------------------


def test_atomic_write_text_and_bytes_follow_the_umask(tmp_path, umask_027):
    atomic_write(tmp_path / "new" / "t.txt", "é\n")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "new" / "t.txt").read_bytes() == "é\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640
    atomic_write(tmp_path / "key", "k", mode=0o600)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "key", "new"]  # no temporary file left


def test_atomic_write_refuses_a_link_and_a_folder(tmp_path):
    (tmp_path / "target").write_text("theirs")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "dir").mkdir()
    with pytest.raises(UnsafePathError) as err:
        atomic_write(tmp_path / "link", "x")
    assert err.value.message == f"{tmp_path / 'link'} is a symbolic link; scaleout writes only regular files"
    with pytest.raises(UnsafePathError) as err:
        atomic_write(tmp_path / "dir", "x")
    assert err.value.message == f"{tmp_path / 'dir'} is a folder; scaleout writes only regular files"
    assert (tmp_path / "target").read_text() == "theirs"


def test_atomic_write_removes_its_temporary_file_when_writing_fails(tmp_path):
    (tmp_path / "f").write_text("old")
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", 123)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (tmp_path / "f").read_text() == "old"


def test_plan_views():
    plan = Plan({"a": "text", "b": b"bytes", "c": "c"}, keep=frozenset({"k"}), modes={"a": 0o600})
    assert plan.text("a") == "text" and plan.text("b") == "bytes"
    assert "a" in plan and "k" not in plan
    sub = plan.subset({"a", "x"})
    assert dict(sub.files) == {"a": "text"} and sub.keep == {"k"} and sub.modes == {"a": 0o600}
    rest = plan.without(("a",))
    assert dict(rest.files) == {"b": b"bytes", "c": "c"} and rest.keep == {"k"} and rest.modes == {"a": 0o600}


# --- the ledger ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        '{"files": ["a"]}',
        "not json",
        '{"files": {"a": 1, "../x": "' + "0" * 64 + '"}}',
    ],
)
def test_a_crafted_ledger_records_nothing(tmp_path, content):
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / CHECKSUMS).write_text(content)
    assert Ledger(tmp_path).files == {}


def test_a_ledger_keeps_its_good_entries_only(tmp_path):
    (tmp_path / ".scaleout").mkdir()
    good = sha256("x")
    (tmp_path / CHECKSUMS).write_text(json.dumps({"files": {"a/b": good, "../up": good, "c": 3, "": good}}))
    assert Ledger(tmp_path).files == {"a/b": good}


def test_an_oversized_or_linked_ledger_records_nothing(tmp_path):
    (tmp_path / ".scaleout").mkdir()
    entry = json.dumps({"files": {"a": sha256("x")}})
    (tmp_path / CHECKSUMS).write_text(entry + " " * (MAX_LEDGER_BYTES - len(entry)))
    assert Ledger(tmp_path).files == {"a": sha256("x")}  # exactly the limit: read
    (tmp_path / CHECKSUMS).write_text(entry + " " * (MAX_LEDGER_BYTES + 1 - len(entry)))
    assert Ledger(tmp_path).files == {}
    (tmp_path / "elsewhere.json").write_text(entry)
    (tmp_path / CHECKSUMS).unlink()
    (tmp_path / CHECKSUMS).symlink_to(tmp_path / "elsewhere.json")
    assert Ledger(tmp_path).files == {}
    (tmp_path / CHECKSUMS).unlink()
    (tmp_path / CHECKSUMS).mkdir()
    assert Ledger(tmp_path).files == {}


def test_current_sha(tmp_path):
    ledger = Ledger(tmp_path)
    assert ledger.current_sha("none") is None
    (tmp_path / "d").mkdir()
    assert ledger.current_sha("d") == "not-a-file"
    (tmp_path / "f").write_text("abc")
    assert ledger.current_sha("f") == sha256("abc") == sha256(b"abc")


def test_write_plan_writes_then_leaves_unchanged_files_alone(tmp_path):
    plan = Plan({"out/a.txt": "A", "b.bin": b"B"})
    first = write_plan(tmp_path, plan)
    assert first.written == ["b.bin", "out/a.txt"] and first.unchanged == [] and first.removed == []
    assert ledger_on_disk(tmp_path) == {"files": {"b.bin": sha256("B"), "out/a.txt": sha256("A")}}
    assert (tmp_path / CHECKSUMS).read_text().endswith("}\n")
    before = (tmp_path / "out" / "a.txt").stat().st_ino
    second = write_plan(tmp_path, plan)
    assert second.written == [] and second.unchanged == ["b.bin", "out/a.txt"]
    assert (tmp_path / "out" / "a.txt").stat().st_ino == before  # not rewritten


def test_write_plan_refuses_a_hand_edit_and_a_foreign_file_and_writes_nothing(tmp_path):
    write_plan(tmp_path, Plan({"a": "A"}))
    (tmp_path / "a").write_text("edited")
    (tmp_path / "theirs").write_text("mine")
    plan = Plan({"a": "A2", "theirs": "T", "new": "N"})
    with pytest.raises(RenderConflictError) as err:
        write_plan(tmp_path, plan, conflict_hint="do this")
    assert err.value.message == (
        "generated file(s) were edited by hand: a\n"
        f"refusing to overwrite file(s) that scaleout did not write: {tmp_path / 'theirs'}"
    )
    assert err.value.hint == "do this"
    assert not (tmp_path / "new").exists() and (tmp_path / "a").read_text() == "edited"
    # one kind alone: the message has that line only
    with pytest.raises(RenderConflictError) as err:
        write_plan(tmp_path, Plan({"theirs": "T"}))
    assert err.value.message.startswith("refusing to overwrite") and "\n" not in err.value.message
    assert err.value.hint == "move your changes into scaleout.yaml, or pass --force to overwrite them"
    with pytest.raises(RenderConflictError) as err:
        write_plan(tmp_path, Plan({"a": "A"}))
    assert err.value.message == "generated file(s) were edited by hand: a"
    # a foreign file with the very bytes of the plan is no conflict
    assert write_plan(tmp_path, Plan({"theirs": "mine"})).unchanged == ["theirs"]


def test_force_overwrites_and_dry_run_writes_nothing(tmp_path):
    (tmp_path / "theirs").write_text("mine")
    with pytest.raises(RenderConflictError):
        write_plan(tmp_path, Plan({"theirs": "T"}), dry_run=True)
    result = write_plan(tmp_path, Plan({"theirs": "T", "new": "N"}), dry_run=True, force=True)
    assert result.written == [] and not (tmp_path / "new").exists() and not (tmp_path / CHECKSUMS).exists()
    assert write_plan(tmp_path, Plan({"theirs": "T"}), force=True).written == ["theirs"]
    assert (tmp_path / "theirs").read_text() == "T"


def test_prune_removes_unchanged_files_and_empty_folders_only(tmp_path):
    write_plan(tmp_path, Plan({"d/e/old.txt": "O", "d/keep.txt": "K", "gone.txt": "G", "edited.txt": "E",
                               "kept.txt": "P", "stay.txt": "S"}))
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "edited.txt").write_text("user's now")
    result = write_plan(tmp_path, Plan({"stay.txt": "S"}, keep=frozenset({"kept.txt"})))
    assert result.removed == ["d/e/old.txt", "d/keep.txt"]
    assert result.kept == ["edited.txt"]
    assert not (tmp_path / "d").exists()  # both folders left empty are gone
    assert (tmp_path / "edited.txt").read_text() == "user's now" and (tmp_path / "kept.txt").exists()
    assert set(ledger_on_disk(tmp_path)["files"]) == {"stay.txt", "kept.txt"}
    # the edited file is no longer recorded: never removed later, even unchanged
    assert write_plan(tmp_path, Plan({"stay.txt": "S"})).removed == ["kept.txt"]
    assert (tmp_path / "edited.txt").exists()


def test_prune_stops_at_a_folder_that_is_not_empty_and_at_the_root(tmp_path):
    write_plan(tmp_path, Plan({"d/x/a.txt": "A", "top.txt": "T"}))
    (tmp_path / "d" / "mine.txt").write_text("m")
    write_plan(tmp_path, Plan({}))
    assert not (tmp_path / "d" / "x").exists() and (tmp_path / "d" / "mine.txt").exists()
    assert tmp_path.is_dir()
    sub = tmp_path / "out"
    write_plan(sub, Plan({"a.txt": "A"}), ledger_rel="manifest.json")
    write_plan(sub, Plan({}), ledger_rel="manifest.json")
    assert sub.is_dir() and sorted(p.name for p in sub.iterdir()) == ["manifest.json"]


def test_no_prune_keeps_recorded_files(tmp_path):
    write_plan(tmp_path, Plan({"a": "A", "b": "B"}))
    result = write_plan(tmp_path, Plan({"a": "A"}), prune=False)
    assert result.removed == [] and (tmp_path / "b").exists()
    assert set(ledger_on_disk(tmp_path)["files"]) == {"a", "b"}


def test_modes_and_ledger_extra(tmp_path, umask_027):
    plan = Plan({"key.pem": "K", "cert.pem": "C"}, modes={"key.pem": 0o600})
    write_plan(tmp_path, plan, ledger_rel="m.json", ledger_extra={"generator": "scaleout"})
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cert.pem").stat().st_mode) == 0o640
    assert ledger_on_disk(tmp_path, "m.json") == {
        "generator": "scaleout", "files": {"cert.pem": sha256("C"), "key.pem": sha256("K")}}
    # unchanged bytes, loosened permissions: the key is made private again, the other file left alone
    os.chmod(tmp_path / "key.pem", 0o644)
    os.chmod(tmp_path / "cert.pem", 0o644)
    assert write_plan(tmp_path, plan, ledger_rel="m.json").unchanged == ["cert.pem", "key.pem"]
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cert.pem").stat().st_mode) == 0o644
    write_plan(tmp_path / "x", Plan({"f": "F"}), mode=0o604)
    assert stat.S_IMODE((tmp_path / "x" / "f").stat().st_mode) == 0o604


def test_a_missing_recorded_file_leaves_the_ledger(tmp_path):
    write_plan(tmp_path, Plan({"a": "A", "b": "B"}))
    (tmp_path / "b").unlink()
    result = write_plan(tmp_path, Plan({"a": "A"}))
    assert result.removed == [] and result.kept == []
    assert set(ledger_on_disk(tmp_path)["files"]) == {"a"}


# --- the project lock ---------------------------------------------------------------------------------


def test_project_lock_refuses_a_negative_wait_and_a_missing_config(tmp_path):
    with pytest.raises(UsageError) as err, project_lock(tmp_path, -1):
        pass
    assert err.value.message == "--lock-wait: must be 0 or more seconds (got -1)"
    with pytest.raises(UsageError) as err, project_lock(tmp_path):
        pass
    assert err.value.message == f"{tmp_path / CONFIG_FILE}: cannot be opened (No such file or directory)"


def test_project_lock_is_exclusive_and_waits(tmp_path):
    project = tmp_path / "shop"
    project.mkdir()
    (project / CONFIG_FILE).write_text("name: shop\n")
    with project_lock(project):
        start = time.monotonic()
        with pytest.raises(LockedError) as err, project_lock(project, wait_s=0.5):
            pass
        waited = time.monotonic() - start
    assert 0.45 <= waited < 1.15  # tries every 0.2 s: gives up at the first try after the deadline
    assert err.value.message == "another scaleout command is changing project shop (it holds a lock on scaleout.yaml)"
    assert err.value.hint == "wait for it to finish, or pass --lock-wait SECONDS to queue behind it"
    with project_lock(project, wait_s=0):  # released on exit
        pass

    # a waiting command gets the lock once the holder lets go
    held = threading.Event()

    def hold():
        with project_lock(project):
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    start = time.monotonic()
    with project_lock(project, wait_s=5):
        waited = time.monotonic() - start
    t.join()
    assert 0.2 <= waited < 4


def test_project_lock_does_not_block_on_a_fifo(tmp_path):
    # a crafted checkout may hold a FIFO named scaleout.yaml: opening it must not wait for a writer
    os.mkfifo(tmp_path / CONFIG_FILE)
    done = threading.Event()

    def lock():
        with project_lock(tmp_path):
            done.set()

    threading.Thread(target=lock, daemon=True).start()
    assert done.wait(10), "project_lock blocked opening a FIFO"


def test_every_path_is_checked_before_the_first_write(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    # a path of the plan through a link, sorted after a good one
    with pytest.raises(UnsafePathError):
        write_plan(tmp_path, Plan({"a.txt": "A", "link/new.txt": "N"}))
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / CHECKSUMS).exists()
    # a recorded path through a link (a crafted ledger), not in the plan: never followed, forgotten
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / CHECKSUMS).write_text(json.dumps({"files": {"link/old.txt": sha256("O")}}))
    (tmp_path / "elsewhere" / "old.txt").write_text("O")
    assert write_plan(tmp_path, Plan({"a.txt": "A"})).removed == []
    assert (tmp_path / "elsewhere" / "old.txt").read_text() == "O"
    assert "link/old.txt" not in json.loads((tmp_path / CHECKSUMS).read_text())["files"]
    (tmp_path / "a.txt").unlink()
    # the ledger itself through a link
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.json").symlink_to(tmp_path / "elsewhere" / "m.json")
    with pytest.raises(UnsafePathError):
        write_plan(tmp_path / "out", Plan({"a.txt": "A"}), ledger_rel="m.json")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_conflict_messages_list_every_file(tmp_path):
    write_plan(tmp_path, Plan({"a": "A", "b": "B"}))
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    (tmp_path / "x").write_text("3")
    (tmp_path / "y").write_text("4")
    with pytest.raises(RenderConflictError) as err:
        write_plan(tmp_path, Plan({"a": "A", "b": "B", "x": "X", "y": "Y"}))
    assert err.value.message == (
        "generated file(s) were edited by hand: a, b\n"
        f"refusing to overwrite file(s) that scaleout did not write: {tmp_path / 'x'}, {tmp_path / 'y'}"
    )


def test_edited_lists_changed_files_kept_or_gone_from_the_plan(tmp_path):
    write_plan(tmp_path, Plan({"a": "A", "b": "B", "c": "C", "d": "D"}))
    for rel in "abcd":
        (tmp_path / rel).write_text("changed")
    ledger = Ledger(tmp_path)
    # a: kept only (not checked); b: kept and planned; c: gone from the plan; d: planned
    plan = Plan({"b": "B", "d": "D"}, keep=frozenset({"a", "b"}))
    assert ledger.edited(plan) == ["b", "c", "d"]


def test_the_ledger_file_and_its_own_link_refusal(tmp_path):
    write_plan(tmp_path, Plan({"a": "A"}))
    assert (tmp_path / CHECKSUMS).read_text() == '{\n  "files": {\n    "a": "' + sha256("A") + '"\n  }\n}\n'
    ledger = Ledger(tmp_path)
    (tmp_path / CHECKSUMS).unlink()
    (tmp_path / CHECKSUMS).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UnsafePathError) as err:
        ledger.save()
    assert err.value.hint == "remove the link (scaleout recreates the ledger as a real file or folder)"
    assert not (tmp_path / "elsewhere.json").exists()


def test_atomic_write_renames_a_hidden_temporary_file_from_the_same_folder(tmp_path, monkeypatch):
    # the same folder: a rename across file systems would not be atomic (or fail); hidden: no glob picks it up
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write(tmp_path / "sub" / "nginx.conf", "x")
    ((src, dst),) = renames
    assert dst == tmp_path / "sub" / "nginx.conf" and src.parent == dst.parent
    assert src.name.startswith(".nginx.conf.") and src.name.endswith(".tmp")


def test_the_default_permissions_are_0666_less_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_confined_says_which_component_cannot_be_inspected(tmp_path):
    name = "a" * 300  # longer than any file system allows: lstat fails with something other than "missing"
    with pytest.raises(UnsafePathError) as err:
        confined(tmp_path, f"{name}/x")
    assert err.value.message == f"cannot inspect {tmp_path / name}: File name too long"


def test_force_still_checks_every_path_before_the_first_write(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        write_plan(tmp_path, Plan({"a.txt": "A", "link/new.txt": "N"}), force=True)
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "elsewhere" / "new.txt").exists()


# --- validation messages word for word (each pins a rule whose message or boundary could change unnoticed) ---

def test_read_capped_reads_big_files_whole_and_refuses_what_is_not_a_file(tmp_path):
    from scaleout.files import read_capped

    data = bytes(range(256)) * 800  # 200 KiB: several reads
    (tmp_path / "big").write_bytes(data)
    assert read_capped(tmp_path / "big", display="big", limit=len(data)) == data
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "big", display="big", limit=len(data) - 1)
    assert str(err.value) == f"big: is {len(data)} bytes; at most {len(data) - 1} bytes are allowed"
    import os

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "fifo", display="fifo")
    assert str(err.value) == (
        "fifo: is not a regular file (a device, FIFO or socket?); scaleout reads only regular files")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path, display="dir")
    assert str(err.value) == "dir: is a folder; scaleout reads only regular files"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "loop", display="loop")
    assert str(err.value) == "loop: cannot be read: Too many levels of symbolic links"
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "missing", display="missing")


@pytest.mark.parametrize("limit", [100, 100_000])
def test_read_capped_stops_at_the_limit_when_the_file_grew(tmp_path, monkeypatch, limit):
    import os

    from scaleout.files import read_capped

    (tmp_path / "f").write_bytes(b"x" * (2 * limit + 70_000))
    real_fstat = os.fstat

    def small_fstat(fd):  # the size fstat saw before the file grew
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "f", display="f", limit=limit)
    assert str(err.value) == f"f: is larger than {limit} bytes"
    (tmp_path / "g").write_bytes(b"y" * limit)
    assert read_capped(tmp_path / "g", display="g", limit=limit) == b"y" * limit


def test_read_capped_reports_a_read_error(tmp_path, monkeypatch):
    import errno
    import os

    from scaleout.files import read_capped

    (tmp_path / "f").write_text("name: x\n")

    def failing_read(fd, n):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", failing_read)
    with pytest.raises(ConfigError) as err:
        read_capped(tmp_path / "f", display="f")
    assert str(err.value) == "f: cannot be read: Input/output error"


@pytest.mark.timeout(30)
def test_read_beneath_opens_once_and_never_through_a_link(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"ok")
    assert files.read_beneath(tmp_path, "d/f", limit=16, display="f") == b"ok"
    with pytest.raises(UnsafePathError, match="is 2 bytes; at most 1 bytes"):
        files.read_beneath(tmp_path, "d/f", limit=1, display="f")
    (tmp_path / "ld").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "lf").symlink_to(tmp_path / "d" / "f")
    for rel, named in (("ld/f", "ld"), ("d/lf", "d/lf")):
        with pytest.raises(UnsafePathError) as err:
            files.read_beneath(tmp_path, rel, limit=16, display="f")
        assert err.value.message == (f"f: {named} is a symbolic link or not a folder; "
                                     "scaleout does not read through links")
    os.mkfifo(tmp_path / "d" / "fifo")
    with pytest.raises(UnsafePathError, match="not a regular file"):  # and does not block
        files.read_beneath(tmp_path, "d/fifo", limit=16, display="f")
    with pytest.raises(FileNotFoundError):
        files.read_beneath(tmp_path, "d/missing", limit=16, display="f")
    with pytest.raises(UnsafePathError):
        files.read_beneath(tmp_path, "../x", limit=16, display="f")
