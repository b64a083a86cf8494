"""The controller's persisted tables: one JSON file, written atomically.

Owns: reading the last snapshot of the logic (`MnLogic.snapshot()`) at start and writing new
ones so that a crash leaves either the old file or the new one, never a torn one (write to a
temporary file in the same directory, fsync, rename over the old one, fsync the directory).
Must not: decide when to write (the app shell debounces), or interpret the snapshot.
"""

from __future__ import annotations

import json
import os
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
        except json.JSONDecodeError as exc:
            raise StateError(f"{self.path}: not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
            raise StateError(f"{self.path}: not a version {SNAPSHOT_VERSION} controller snapshot")
        logic = doc.get("logic")
        if not isinstance(logic, dict):
            raise StateError(f"{self.path}: no 'logic' section")
        return logic

    def encode(self, logic: dict[str, Any]) -> bytes:
        return json.dumps(
            {"version": SNAPSHOT_VERSION, "logic": logic}, separators=(",", ":")
        ).encode()

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
