"""The MN-HA keys file: one RFC 4285 mobility security association per mobile node NAI.

Owns: loading the keys file (YAML, ``mobile_nodes: {<NAI>: {spi: N, secret: <hex>}}``), refusing
a file that is not owned by root or is readable by group or others (one line naming the file and
the fix), validating every entry (NAI syntax, SPI > 255, a 16-octet secret), and `KeyStore`,
which maps an NAI to its `MnHaKey`. Secrets never appear in a repr, a log line or an error
message: errors name the NAI and the field, never the value.

Must not: verify authenticators (`authn.py` does, with the codec) or know about bindings.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from sdnmip.mipv6.auth import MN_HA_KEY_LEN, MOBILITY_SPI_RESERVED_MAX, MnHaKey

# RFC 4282 NAI: "username@realm", printable, no whitespace; bounded as RFC 4283's option
# (one octet of length, minus the subtype octet) allows.
NAI_MAX_LEN = 254
_NAI = re.compile(r"^[^\s@]+@[^\s@]+$")
SPI_MAX = 0xFFFFFFFF


class KeysFileError(ValueError):
    """The keys file is unsafe or malformed; the message names the file (and NAI, field)."""


@dataclass(frozen=True, slots=True)
class MobileNodeKey:
    """One mobile node's security association. The secret is kept out of every repr."""

    nai: str
    key: MnHaKey

    @property
    def spi(self) -> int:
        return self.key.spi


class KeyStore(Mapping[str, MnHaKey]):
    """NAI -> MnHaKey, read-only. `repr` lists NAIs and SPIs only."""

    __slots__ = ("_by_nai", "source")

    def __init__(self, keys: Mapping[str, MnHaKey], source: str = "<memory>") -> None:
        self._by_nai = dict(keys)
        self.source = source

    def __getitem__(self, nai: str) -> MnHaKey:
        return self._by_nai[nai]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_nai)

    def __len__(self) -> int:
        return len(self._by_nai)

    def __repr__(self) -> str:
        inner = ", ".join(f"{nai}: spi {k.spi}" for nai, k in sorted(self._by_nai.items()))
        return f"KeyStore({self.source}: {inner})"

    __str__ = __repr__


def check_permissions(path: Path, owner_uid: int = 0) -> None:
    """Refuse a keys file not owned by root (`owner_uid`), or open to group or others."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeysFileError(f"keys file {path}: does not exist") from None
    except OSError as exc:
        raise KeysFileError(f"keys file {path}: cannot stat: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeysFileError(f"keys file {path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeysFileError(
            f"keys file {path}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others access "
            f"the secrets (fix: chmod 600 {path})"
        )
    if st.st_uid != owner_uid:
        raise KeysFileError(
            f"keys file {path}: owned by uid {st.st_uid}, must be owned by root "
            f"(fix: chown root:root {path} && chmod 600 {path})"
        )


def parse_keys(document: object, source: str) -> KeyStore:
    """Validate a loaded keys document (see module docstring for the layout)."""
    if not isinstance(document, Mapping) or set(document) != {"mobile_nodes"}:
        raise KeysFileError(f"keys file {source}: must hold exactly one key, mobile_nodes")
    nodes = document["mobile_nodes"]
    if not isinstance(nodes, Mapping):
        raise KeysFileError(f"keys file {source}: mobile_nodes must map NAI -> {{spi, secret}}")
    keys: dict[str, MnHaKey] = {}
    spis: dict[int, str] = {}
    for nai, entry in nodes.items():
        where = f"keys file {source}: mobile_nodes.{nai}"
        if not isinstance(nai, str) or not _NAI.match(nai) or len(nai.encode()) > NAI_MAX_LEN:
            raise KeysFileError(f"{where}: not an NAI like mn1@example.net (RFC 4282)")
        if not isinstance(entry, Mapping) or set(entry) != {"spi", "secret"}:
            raise KeysFileError(f"{where}: must have exactly the keys spi and secret")
        spi = entry["spi"]
        if isinstance(spi, bool) or not isinstance(spi, int):
            raise KeysFileError(f"{where}.spi: must be an integer")
        if not MOBILITY_SPI_RESERVED_MAX < spi <= SPI_MAX:
            raise KeysFileError(
                f"{where}.spi: must be in {MOBILITY_SPI_RESERVED_MAX + 1}..{SPI_MAX} "
                "(0-255 are reserved, RFC 4285 §5.1)"
            )
        if spi in spis:
            raise KeysFileError(f"{where}.spi: {spi} is already used by {spis[spi]}")
        secret = entry["secret"]
        # The value is never echoed: only its shape is described.
        if not isinstance(secret, str):
            raise KeysFileError(f"{where}.secret: must be a string of hex digits")
        try:
            raw = bytes.fromhex(secret)
        except ValueError:
            raise KeysFileError(f"{where}.secret: must be hex digits only") from None
        if len(raw) != MN_HA_KEY_LEN:
            raise KeysFileError(
                f"{where}.secret: must be {MN_HA_KEY_LEN} octets "
                f"({2 * MN_HA_KEY_LEN} hex digits, RFC 4285 §5.1), got {len(raw)}"
            )
        spis[spi] = nai
        keys[nai] = MnHaKey(spi=spi, key=raw)
    return KeyStore(keys, source)


def load_keys(path: Path, *, owner_uid: int = 0) -> KeyStore:
    """Load the keys file after checking who may read it (see `check_permissions`)."""
    check_permissions(path, owner_uid)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise KeysFileError(f"keys file {path}: cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer of thousands of digits
        # yaml's message may quote the offending line, which may hold a secret.
        raise KeysFileError(f"keys file {path}: not valid YAML") from None
    return parse_keys(document, str(path))
