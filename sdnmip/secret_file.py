"""Reading a secret (a key, a bearer token) from a file a person configured.

A secret file must be a regular file owned by root (or by the user running sdnmip) that no one
else may access; its text is ASCII. Every refusal names the configuration field and says what to
do. Imports nothing of the project, so every package may use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(ValueError):
    """The file is missing, unsafe or unreadable; the message names the field."""


def read_secret_file(path: Path, field: str, what: str) -> str:
    """The stripped ASCII text of `path` (the `field` of the configuration), holding `what`."""
    try:
        st = path.stat()
    except OSError as exc:
        raise SecretFileError(f"{field}: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"{field}: {path} is not a regular file")
    if st.st_uid not in (0, os.geteuid()):
        raise SecretFileError(f"{field}: {path} must be owned by root (owner uid {st.st_uid})")
    if st.st_mode & 0o077:
        raise SecretFileError(
            f"{field}: {path} is accessible to others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(f"{field}: {path}: cannot read the {what}: {exc}") from None
