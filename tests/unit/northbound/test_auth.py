"""The token file and the listen-address rule: refused unless only root (or we) can read it,
and no start off loopback without one."""

from __future__ import annotations

import os
from ipaddress import IPv6Network
from types import SimpleNamespace

import pytest

from sdnmip.northbound.auth import BearerAuth, TokenFileError, is_loopback, load_token, split_listen
from sdnmip.northbound.server import Northbound, StartError

TOKEN = "0123456789abcdef0123"


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_private_token_file_is_read(tmp_path):
    assert load_token(write(tmp_path / "t", TOKEN + "\n")) == TOKEN


@pytest.mark.parametrize(
    ("text", "mode", "words"),
    [
        (TOKEN, 0o644, "accessible to others"),
        (TOKEN, 0o640, "chmod 600"),
        ("short", 0o600, "16-4096 printable"),
        ("has a space in it 0123456", 0o600, "without spaces"),
    ],
)
def test_unsafe_or_bad_token_files_are_refused(tmp_path, text, mode, words):
    with pytest.raises(TokenFileError, match=words) as err:
        load_token(write(tmp_path / "t", text, mode))
    assert str(err.value).startswith("northbound.token_file: ")


def test_missing_token_file_and_directories_are_refused(tmp_path):
    with pytest.raises(TokenFileError, match="No such file"):
        load_token(tmp_path / "nope")
    with pytest.raises(TokenFileError, match="not a regular file"):
        load_token(tmp_path)


def test_bearer_check():
    auth = BearerAuth(TOKEN)
    assert auth.allows(f"Bearer {TOKEN}") and auth.allows(f"bearer  {TOKEN} ")
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"):
        assert not auth.allows(header)


def test_listen_addresses():
    assert split_listen("[::1]:8181") == ("::1", 8181)
    assert split_listen("127.0.0.1:80") == ("127.0.0.1", 80)
    assert is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("2001:db8::1")


def config(tmp_path, listen, token_file=None):
    return SimpleNamespace(
        uplinks=(SimpleNamespace(name="wlan", cost=10), SimpleNamespace(name="lte", cost=20)),
        preferred="lte",
        home_prefixes=(IPv6Network("2001:db8:100::/64"),),
        policy=SimpleNamespace(dir=None),
        paths=SimpleNamespace(state_dir=tmp_path),
        northbound=SimpleNamespace(listen=listen, token_file=token_file),
    )


def test_the_northbound_refuses_to_start_off_loopback_without_a_token(tmp_path):
    with pytest.raises(StartError, match=r"northbound\.token_file: required"):
        Northbound.from_config(config(tmp_path, "[2001:db8::1]:8181"))
    with pytest.raises(StartError, match="accessible to others"):
        Northbound.from_config(
            config(tmp_path, "0.0.0.0:8181", write(tmp_path / "t", TOKEN, 0o644))
        )
    nb = Northbound.from_config(config(tmp_path, "0.0.0.0:8181", write(tmp_path / "t", TOKEN)))
    assert nb.token == TOKEN and (nb.host, nb.port) == ("0.0.0.0", 8181)
    local = Northbound.from_config(config(tmp_path, "127.0.0.1:8181"))
    assert local.token is None
    # preferred_uplink comes first in the order strategies and the built-in default follow.
    assert local.store.uplink_order == ("lte", "wlan")
