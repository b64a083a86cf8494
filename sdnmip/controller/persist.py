"""The controller's persisted tables: one JSON file, written atomically.

Owns: reading the last snapshot of the logic (`MnLogic.snapshot()`) at start and writing new
ones so that a crash leaves either the old file or the new one, never a torn one (write to a
temporary file in the same directory, fsync, rename over the old one, fsync the directory).
Must not: decide when to write (the app shell debounces), or interpret the snapshot beyond
finding its list of flows (to encode it in parts).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SNAPSHOT_VERSION = 1


class StateError(ValueError):
    """The state file exists but cannot be used; the message names the file and the problem."""


class SnapshotStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved snapshot, or None if there is none."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise StateError(f"{self.path}: not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
            raise StateError(f"{self.path}: not a version {SNAPSHOT_VERSION} controller snapshot")
        logic = doc.get("logic")
        if not isinstance(logic, dict):
            raise StateError(f"{self.path}: no 'logic' section")
        return logic

    def encode(self, logic: dict[str, Any]) -> bytes:
        return b"".join(self.encode_parts(logic))

    def encode_parts(self, logic: dict[str, Any], flows_per_part: int = 250) -> Iterator[bytes]:
        """The same bytes as `encode`, in parts of a few hundred flows each, so that the caller
        can let other work run between them (encoding thousands of flows takes milliseconds)."""
        table = logic.get("flows")
        if not isinstance(table, dict) or not isinstance(table.get("flows"), list):
            yield _dumps({"version": SNAPSHOT_VERSION, "logic": logic})  # nothing to split
            return
        rest = {k: v for k, v in logic.items() if k != "flows"}
        head = {k: v for k, v in table.items() if k != "flows"}
        yield b'{"version":%d,"logic":{"flows":{' % SNAPSHOT_VERSION
        for k, v in head.items():
            yield _dumps(k) + b":" + _dumps(v) + b","
        yield b'"flows":['
        rows = table["flows"]
        for i in range(0, len(rows), flows_per_part):
            part = b",".join(_dumps(r) for r in rows[i : i + flows_per_part])
            yield (b"," if i else b"") + part
        yield b"]}"
        for k, v in rest.items():
            yield b"," + _dumps(k) + b":" + _dumps(v)
        yield b"}}"

    def write(self, data: bytes) -> None:
        """Replace the file with `data` (from `encode`) atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
