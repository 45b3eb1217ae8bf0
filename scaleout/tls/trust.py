"""`scaleout trust`: the steps that make this machine trust the local certificate authority
(scaleout/tls/certs.py), as data, so that they can be printed, performed (`--install`) and undone (`--uninstall`).

- the system store, read by curl, Python, Node and most tools: Debian and Ubuntu keep extra
  authorities in /usr/local/share/ca-certificates/ and `update-ca-certificates` builds the bundle (root);
- the NSS databases that browsers read: Chromium (and Chrome) ~/.pki/nssdb, Firefox one per profile;
  `certutil` comes from Debian's libnss3-tools.
Nothing here trusts anything without being asked: printing is the default.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scaleout.layout import TRUST_STORES

SYSTEM_DIR = Path("/usr/local/share/ca-certificates")
SYSTEM_FILE = "scaleout-local-ca.crt"
NICKNAME = "scaleout local CA"
STORES = TRUST_STORES
NSS_HINT = "certutil is missing: apt-get install libnss3-tools"


@dataclass(frozen=True)
class Step:
    """One store: what it is, the commands that change it, and why it cannot run here (if so)."""

    store: str  # system | nss
    what: str
    commands: tuple[tuple[str, ...], ...]
    needs_root: bool = False
    missing: str | None = None

    def shell(self, as_root: bool) -> list[str]:
        """The commands as a user would type them (with sudo when the step needs root and we are not)."""
        sudo = "sudo " if self.needs_root and not as_root else ""
        return [sudo + shlex.join(c) for c in self.commands]


def is_root() -> bool:
    return os.geteuid() == 0


def nss_databases(home: Path) -> list[tuple[str, Path]]:
    """(what, folder) of every NSS database a browser of this user reads: Chromium's (always listed:
    `--install` creates it), and each Firefox profile that has one."""
    found = [("Chromium / Chrome (NSS database ~/.pki/nssdb)", home / ".pki" / "nssdb")]
    for base in (home / ".mozilla" / "firefox", home / "snap" / "firefox" / "common" / ".mozilla" / "firefox"):
        if base.is_dir():
            for profile in sorted(base.iterdir()):
                if (profile / "cert9.db").is_file():
                    found.append((f"Firefox profile {profile.name}", profile))
    return found


def install_steps(ca_path: Path, home: Path, stores: tuple[str, ...] = STORES,
                  system_dir: Path = SYSTEM_DIR, which: Callable[[str], str | None] = shutil.which) -> list[Step]:
    """The steps that trust `ca_path` in each of `stores`."""
    steps = []
    if "system" in stores:
        target = system_dir / SYSTEM_FILE
        steps.append(Step(
            "system", f"system store ({target}, then update-ca-certificates)",
            (("install", "-m", "0644", str(ca_path), str(target)), ("update-ca-certificates",)),
            needs_root=True,
            missing=None if which("update-ca-certificates") else
            "update-ca-certificates is missing (Debian and Ubuntu have it; elsewhere, e.g. Fedora: copy the "
            "certificate into /etc/pki/ca-trust/source/anchors/ and run update-ca-trust)",
        ))
    if "nss" in stores:
        for what, folder in nss_databases(home):
            db = f"sql:{folder}"
            commands: tuple[tuple[str, ...], ...] = ()
            if not (folder / "cert9.db").is_file():
                commands += (("mkdir", "-p", "-m", "0700", str(folder)),
                             ("certutil", "-d", db, "-N", "--empty-password"))
            commands += (("certutil", "-d", db, "-A", "-t", "C,,", "-n", NICKNAME, "-i", str(ca_path)),)
            steps.append(Step("nss", what, commands, missing=None if which("certutil") else NSS_HINT))
    return steps


def uninstall_steps(home: Path, stores: tuple[str, ...] = STORES, system_dir: Path = SYSTEM_DIR,
                    which: Callable[[str], str | None] = shutil.which) -> list[Step]:
    """The steps that undo `install_steps` (only where there is something to undo)."""
    steps = []
    target = system_dir / SYSTEM_FILE
    if "system" in stores and target.exists():
        steps.append(Step("system", f"system store ({target})",
                          (("rm", "-f", str(target)), ("update-ca-certificates", "--fresh")), needs_root=True,
                          missing=None if which("update-ca-certificates") else "update-ca-certificates is missing"))
    if "nss" in stores:
        for what, folder in nss_databases(home):
            if (folder / "cert9.db").is_file():
                steps.append(Step("nss", what, (("certutil", "-d", f"sql:{folder}", "-D", "-n", NICKNAME),),
                                  missing=None if which("certutil") else NSS_HINT))
    return steps


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: str  # done | skipped | failed
    detail: str = ""


def perform(steps: list[Step], *, undo: bool = False, as_root: bool | None = None) -> list[Outcome]:
    """Run each step's commands in order; a step that cannot run here is skipped and says why."""
    as_root = is_root() if as_root is None else as_root
    out = []
    for step in steps:
        if step.missing:
            out.append(Outcome(step, "skipped", step.missing))
            continue
        if step.needs_root and not as_root:
            out.append(Outcome(step, "skipped", "needs root; run: " + " && ".join(step.shell(as_root))))
            continue
        failed = None
        for cmd in step.commands:
            r = subprocess.run(list(cmd), capture_output=True, text=True, errors="replace", timeout=120)
            # removing a nickname that is not there is already the state that --uninstall wants
            if r.returncode != 0 and not (undo and cmd[0] == "certutil"
                                           and "could not find" in (r.stderr + r.stdout).lower()):
                failed = f"`{shlex.join(cmd)}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
                break
        out.append(Outcome(step, "failed", failed) if failed else Outcome(step, "done"))
    return out
