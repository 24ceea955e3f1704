"""Files that hold credentials or secrets (kubeconfigs, audit logs at RequestResponse): mode 0600 from the
first byte, also when the file already exists."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` readable by its owner only; return the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path
