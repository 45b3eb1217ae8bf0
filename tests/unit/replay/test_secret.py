"""The replay secret (.scaleout/replay-secret) is a file of a cloned repository too: a committed link to
/dev/zero, to a huge file or out of the project is never read (it would hang or fill memory)."""

from __future__ import annotations

import pytest

from scaleout.replay.secret import SECRET_FILE, read_secret

GOOD = "a" * 64


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["dev-zero", "outside", "huge"])
def test_a_crafted_secret_file_is_not_read(tmp_path, kind):
    project = tmp_path / "p"
    (project / ".scaleout").mkdir(parents=True)
    secret = project / SECRET_FILE
    if kind == "dev-zero":
        secret.symlink_to("/dev/zero")
    elif kind == "outside":
        (tmp_path / "theirs").write_text(GOOD)
        secret.symlink_to(tmp_path / "theirs")
    else:
        with open(secret, "wb") as fh:
            fh.write(GOOD.encode())
            fh.truncate(2 << 30)  # sparse
    assert read_secret(project) is None


def test_a_good_secret_is_read(tmp_path):
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / SECRET_FILE).write_text(GOOD + "\n")
    assert read_secret(tmp_path) == GOOD


def test_a_link_inside_the_project_is_not_followed_either(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "replay-secret").write_text(GOOD)
    (tmp_path / ".scaleout").symlink_to(tmp_path / "real")  # a linked folder
    assert read_secret(tmp_path) is None
    (tmp_path / ".scaleout").unlink()
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / SECRET_FILE).symlink_to(tmp_path / "real" / "replay-secret")  # a linked file
    assert read_secret(tmp_path) is None


def test_the_path_is_checked_by_the_open_itself(tmp_path, monkeypatch):
    # a path swapped for a link after a separate check (lstat said: a regular file) is still not read:
    # the check and the read are one open with O_NOFOLLOW, then fstat on that descriptor
    import os
    import stat as st

    (tmp_path / "theirs").write_text(GOOD)
    (tmp_path / ".scaleout").mkdir()
    (tmp_path / SECRET_FILE).symlink_to(tmp_path / "theirs")
    real_lstat = os.lstat

    def lstat_before_the_swap(path, *args, **kwargs):
        result = real_lstat(path, *args, **kwargs)
        if st.S_ISLNK(result.st_mode):
            return real_lstat(tmp_path / "theirs")
        return result

    monkeypatch.setattr(os, "lstat", lstat_before_the_swap)
    assert read_secret(tmp_path) is None
