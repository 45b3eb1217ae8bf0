"""A corpus of hostile projects, as a cloned repository could hold them, each run through the real CLI
(a subprocess): every one ends in exit 2 within the test's timeout, one clear message (the file, key or
path, what is allowed), no traceback, and nothing written or changed, in the project or outside it.
Ledgers that name files they do not own are in tests/test_ledger_names.py (there the command succeeds
and removes nothing)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import run_cli

GIB = 1024 ** 3
BASE = "name: hostile\nbackend: {image: app:1}\n"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    build: Callable[[Path, Path], None]  # (project, outside) -> None
    expect: str  # in the message
    cwd_is_parent: bool = False  # `init DIR` runs beside the folder


def _project(p: Path, yaml_text: str = BASE) -> None:
    (p / "public" / "static").mkdir(parents=True, exist_ok=True)
    (p / "public" / "offline.html").write_text("<p>offline</p>")
    (p / "public" / "static" / "app.css").write_text("p{}")
    (p / "scaleout.yaml").write_text(yaml_text)


def _yaml(text: str) -> Callable[[Path, Path], None]:
    return lambda p, _o: _project(p, BASE + text)


def _static_link(p: Path, o: Path) -> None:
    (p / "public").mkdir(parents=True)
    (p / "public" / "static").symlink_to(o)


def _file_link(p: Path, o: Path) -> None:
    (p / "public").mkdir(parents=True)
    (o / "victim.html").write_text("mine")
    (p / "public" / "offline.html").symlink_to(o / "victim.html")


def _project_link(p: Path, o: Path) -> None:
    p.symlink_to(o, target_is_directory=True)


def _out_link(p: Path, o: Path) -> None:
    _project(p)
    (p / "deploy").symlink_to(o)


def _env_in_static(p: Path, o: Path) -> None:
    _project(p, BASE + "static: {dir: site}\n")
    (p / "site").mkdir()
    (p / "site" / ".env").write_text("TOKEN=secret\n")


def _env_file_in_static(p: Path, o: Path) -> None:
    _project(p, "name: hostile\nbackend: {image: app:1, env_file: public/app.env}\n")
    (p / "public" / "app.env").write_text("TOKEN=secret\n")


def _sparse(rel: str) -> Callable[[Path, Path], None]:
    def build(p: Path, _o: Path) -> None:
        _project(p)
        with open(p / rel, "wb") as fh:
            fh.truncate(int(1.5 * GIB))  # sparse: costs no disk, but reading it whole would cost 1.5 GB
    return build


def _many(key_text: str) -> Callable[[Path, Path], None]:
    return lambda p, _o: _project(p, BASE.replace("backend: {image: app:1}\n", "") + key_text)


CASES = {
    "init-static-link": Case(("init", "hostile"), _static_link, "symbolic link", cwd_is_parent=True),
    "init-force-static-link": Case(("init", "hostile", "--force"), _static_link, "symbolic link", cwd_is_parent=True),
    "init-force-file-link": Case(("init", "hostile", "--force"), _file_link, "symbolic link", cwd_is_parent=True),
    "init-into-link": Case(("init", "hostile"), _project_link, "symbolic link", cwd_is_parent=True),
    "export-out-link": Case(("export", "swarm", "--out", "deploy/swarm"), _out_link, "symbolic link"),
    "export-out-link-itself": Case(("export", "k8s", "--out", "deploy", "--image", "r.example/a:1"), _out_link,
                                   "symbolic link"),
    "static-dir-root": Case(("render",), _yaml("static: {dir: '.'}\n"), "static.dir"),
    "static-dir-dotgit": Case(("render",), _yaml("static: {dir: .git}\n"), "static.dir"),
    "static-dir-env": Case(("render",), _env_in_static, "static.dir: site/ holds .env"),
    "static-dir-env-file": Case(("render",), _env_file_in_static, "holds the env file public/app.env"),
    "export-static-dir-root": Case(("export", "k8s", "--out", "k8s", "--image", "r.example/a:1"),
                                   _yaml("static: {dir: '.'}\n"), "static.dir"),
    "route-dotenv": Case(("render",), _yaml("static: {routes: ['/.env']}\n"), "static.routes"),
    "route-dotgit": Case(("render",), _yaml("static: {routes: ['/.git/']}\n"), "static.routes"),
    "worker-hidden": Case(("render",), _yaml("static: {service_workers: ['/static/.sw.js']}\n"),
                          "static.service_workers"),
    "depends-on-90000": Case(("render",), _many("backend:\n  image: app:1\n  depends_on: ["
                                                + ",".join(["db"] * 90_000) + "]\n"), "backend.depends_on: at most"),
    "ports-33000": Case(("render",), _many("backend: {image: app:1}\nservices:\n  db:\n    image: x\n    ports:\n"
                                           + "".join(f'      - "{1 + i % 60000}:5432"\n' for i in range(33_000))),
                        "services.db.ports: at most"),
    "services-5000": Case(("render",), _many("backend: {image: app:1}\nservices:\n"
                                             + "".join(f"  s{i}: {{image: x}}\n" for i in range(5_000))),
                          "services: at most"),
    "env-40000": Case(("render",), _many("backend:\n  image: app:1\n  env:\n"
                                         + "".join(f"    K{i}: v\n" for i in range(40_000))), "backend.env: at most"),
    "routes-50000": Case(("render",), _yaml("static:\n  routes: [" + ",".join(f"/r{i}" for i in range(50_000))
                                            + "]\n"), "static.routes: at most"),
    "huge-static-file": Case(("render",), _sparse("public/static/big.bin"), "bytes are allowed"),
    "huge-offline-page": Case(("render",), _sparse("public/offline.html"), "static.offline_page"),
    "huge-static-file-export": Case(("export", "k8s", "--out", "k8s", "--image", "r.example/a:1"),
                                    _sparse("public/static/big.bin"), "bytes are allowed"),
}


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry below `folder`: its kind, size, mode, and the hash of its first MiB (links: their target)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[str(path.relative_to(folder))] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    head = hashlib.sha256(fh.read(1 << 20)).hexdigest()
                out[str(path.relative_to(folder))] = ("file", st.st_size, st.st_mode, st.st_mtime_ns, head)
            else:
                out[str(path.relative_to(folder))] = ("dir", st.st_mode)
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_project_ends_in_exit_2_with_one_message_and_nothing_written(tmp_path, name):
    case = CASES[name]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("the user's own file")
    project = tmp_path / "hostile"
    case.build(project, outside)
    before = snapshot(tmp_path)
    r = run_cli(list(case.args), cwd=tmp_path if case.cwd_is_parent else project, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert case.expect in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, r.stderr
    assert snapshot(tmp_path) == before  # nothing written, in the project or outside it
