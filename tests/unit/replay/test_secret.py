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
