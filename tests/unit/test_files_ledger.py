"""A committed ledger (.scaleout/checksums.json, an export folder's .scaleout-export.json) names only
what it may remove: scaleout's own files in that folder. Entries naming .git/HEAD, source files, notes,
links, `../x` or absolute paths remove nothing, even when the recorded checksum matches the file; every
removal is printed. Folders named to `init` and `export --out` are refused through a symbolic link."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scaleout.errors import UnsafePathError
from scaleout.export import EXPORT_MANIFEST, is_export_name
from scaleout.files import Plan, check_no_links, sha256, write_plan
from scaleout.layout import CHECKSUMS
from tests.helpers import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "python-demo"
# names a crafted ledger may list, each a file of the repository that must survive
VICTIMS = {".git/HEAD": "ref: refs/heads/main\n", "app.py": "print('mine')\n", "NOTES.md": "my notes\n",
           "backend/app.py": "x = 1\n", ".env": "SECRET=1\n", "scaleout.yaml.bak": "name: x\n"}


def _ledger(folder: Path, rel: str, entries: dict[str, str]) -> None:
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_text(json.dumps({"files": {k: sha256(v) for k, v in entries.items()}}))


def _victims(folder: Path) -> None:
    for rel, text in VICTIMS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def _survived(folder: Path) -> None:
    for rel, text in VICTIMS.items():
        assert (folder / rel).read_text() == text, rel


def test_the_project_ledger_removes_only_files_under_dot_scaleout(tmp_path):
    _victims(tmp_path)
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / ".scaleout" / "old.txt").write_text("old")
    _ledger(tmp_path, CHECKSUMS, {**VICTIMS, ".scaleout/old.txt": "old"})
    result = write_plan(tmp_path, Plan({".scaleout/new.txt": "new"}))
    _survived(tmp_path)
    assert result.removed == [".scaleout/old.txt"] and not (tmp_path / ".scaleout" / "old.txt").exists()
    recorded = json.loads((tmp_path / CHECKSUMS).read_text())["files"]
    assert sorted(recorded) == [".scaleout/new.txt"]  # the foreign entries are forgotten, not carried on


def test_an_export_ledger_removes_only_the_exports_own_names(tmp_path):
    _victims(tmp_path)
    (tmp_path / "ingress.yaml").write_text("old")
    _ledger(tmp_path, EXPORT_MANIFEST, {**VICTIMS, "ingress.yaml": "old", "notes/stack.yml": "n"})
    result = write_plan(tmp_path, Plan({"backend.yaml": "b"}), ledger_rel=EXPORT_MANIFEST, owned=is_export_name)
    _survived(tmp_path)
    assert result.removed == ["ingress.yaml"]


def test_a_ledger_entry_that_is_a_link_removes_neither_link_nor_target(tmp_path):
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / ".scaleout" / "l.txt").symlink_to(tmp_path / "outside.txt")
    _ledger(tmp_path, CHECKSUMS, {".scaleout/l.txt": "x"})
    assert write_plan(tmp_path, Plan({})).removed == []
    assert (tmp_path / ".scaleout" / "l.txt").is_symlink() and (tmp_path / "outside.txt").read_text() == "x"


def test_render_prints_every_removal_and_keeps_the_repositorys_files(tmp_path):
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".scaleout"))
    _victims(project)
    assert run_cli(["render"], cwd=project).returncode == 0
    stale = project / ".scaleout" / "nginx" / "stale.conf"
    stale.write_text("stale")
    ledger = json.loads((project / CHECKSUMS).read_text())
    ledger["files"].update({k: sha256(v) for k, v in VICTIMS.items()})
    ledger["files"][".scaleout/nginx/stale.conf"] = sha256("stale")
    (project / CHECKSUMS).write_text(json.dumps(ledger))
    r = run_cli(["render"], cwd=project)
    assert r.returncode == 0, r.stderr
    _survived(project)
    assert not stale.exists()
    assert "removed .scaleout/nginx/stale.conf" in r.stderr + r.stdout


def test_check_no_links_refuses_a_link_on_the_way(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    check_no_links(tmp_path / "real" / "new" / "deeper", what="--out")
    for path in (tmp_path / "link", tmp_path / "link" / "k8s", tmp_path / "real" / ".." / "link" / "x"):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            check_no_links(path, what="--out")


def test_init_refuses_a_committed_symlink_even_with_force(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    project = tmp_path / "clone"
    (project / "public").mkdir(parents=True)
    (project / "public" / "static").symlink_to(outside)
    for args in (["init", "clone"], ["init", "clone", "--force"]):
        r = run_cli(args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert "symbolic link" in r.stderr and "Traceback" not in r.stderr
        assert list(outside.iterdir()) == []
        assert sorted(p.name for p in project.iterdir()) == ["public"]  # nothing written at all


def test_init_into_a_linked_folder_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "here").symlink_to(tmp_path / "outside")
    r = run_cli(["init", "here"], cwd=tmp_path)
    assert r.returncode == 2 and "symbolic link" in r.stderr
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("out", ["deploy/k8s", "deploy"])
def test_export_out_through_a_linked_folder_is_refused(tmp_path, out):
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".scaleout"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "deploy").symlink_to(outside)
    r = run_cli(["export", "swarm", "--out", out], cwd=project)
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr and "Traceback" not in r.stderr
    assert list(outside.iterdir()) == []


def test_the_users_own_way_to_the_project_may_go_through_a_link(tmp_path):
    (tmp_path / "real" / "work").mkdir(parents=True)
    (tmp_path / "work").symlink_to(tmp_path / "real" / "work")  # e.g. ~/work -> /mnt/data/work
    project = tmp_path / "work"
    check_no_links(project / "deploy" / "k8s", what="--out", trusted=project)
    (tmp_path / "real" / "work" / "deploy").symlink_to(tmp_path)  # but the repository's own links are refused
    with pytest.raises(UnsafePathError, match="deploy is a symbolic link"):
        check_no_links(project / "deploy" / "k8s", what="--out", trusted=project)
    r = run_cli(["init", "fresh"], cwd=project)  # cwd reached through the user's link
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "real" / "work" / "fresh" / "scaleout.yaml").is_file()


def test_a_recorded_file_is_hashed_in_chunks_never_read_whole(tmp_path, monkeypatch):
    (tmp_path / ".scaleout").mkdir()
    big = tmp_path / ".scaleout" / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(3 << 20)
    _ledger(tmp_path, CHECKSUMS, {".scaleout/big.bin": "\0" * (3 << 20)})

    def whole(*_a, **_k):
        raise AssertionError("a whole file was read into memory")

    monkeypatch.setattr(Path, "read_bytes", whole)
    assert write_plan(tmp_path, Plan({})).removed == [".scaleout/big.bin"]
