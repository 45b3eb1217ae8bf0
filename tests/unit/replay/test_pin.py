"""The pin route is rendered only with a secret; the secret file is 0600, made once and removed by down."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.render.nginx import render_nginx
from scaleout.replay.secret import SECRET_FILE, ensure_secret, forget_secret, read_secret


def _cfg(tmp_path: Path):
    return parse_config("name: rp\nbackend:\n  build: .\n  port: 8000\n  replicas: 2\n", tmp_path)


def test_no_secret_no_route(tmp_path):
    text = render_nginx(_cfg(tmp_path))
    assert "scaleout_pin" not in text and "X-Scaleout-Pin" not in text


def test_route_keys_hold_the_secret(tmp_path):
    secret = "ab" * 32
    text = render_nginx(_cfg(tmp_path), pin=secret)
    assert f'"{secret}:backend-1" backend-1;' in text and f'"{secret}:backend-2" backend-2;' in text
    assert text.index("map_hash_bucket_size") < text.index("map $http_upgrade")
    assert 'proxy_set_header X-Scaleout-Pin "";' in text


def test_bad_secret_is_refused(tmp_path):
    with pytest.raises(ValueError):
        render_nginx(_cfg(tmp_path), pin='x"; }')


def test_secret_made_once_0600_and_forgotten(tmp_path):
    first = ensure_secret(tmp_path)
    assert ensure_secret(tmp_path) == first == read_secret(tmp_path)
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    forget_secret(tmp_path)
    assert read_secret(tmp_path) is None
    assert ensure_secret(tmp_path) != first
