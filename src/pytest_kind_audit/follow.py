"""Following a log file that the API server rotates (lumberjack: rename to ``<name>-<time>.log``, start a
new file), so that every byte is read exactly once, in order, across rotations and restarts.

The file system is abstracted (``LogFiles``) so the same logic serves a local file and a file inside a
container read through the Docker SDK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

__all__ = ["FileSource", "LocalFiles", "LogFiles", "LogFollower"]

# An offset beyond any file: a read from it returns the inode and size and no bytes.
_PAST_THE_END = 1 << 50


class LogFiles(Protocol):
    """The three reads a follower needs."""

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        """The inode and size of the live file and its bytes from ``offset``, from one open file (so all
        three agree); ``(None, 0, b"")`` while it does not exist."""
        ...

    def backups(self) -> list[tuple[int, str]]:
        """Rotated files as (inode, path), oldest first."""
        ...

    def read_path(self, path: str, offset: int) -> bytes: ...


class LogFollower:
    """Turns a rotating file into one stream: ``read_new()`` returns what was written since its last call."""

    def __init__(self, files: LogFiles) -> None:
        self.files = files
        self.inode: int | None = None
        self.offset = 0
        self.rotations = 0
        #: Rotated files that were gone (deleted by --audit-log-maxbackup) before we read them.
        self.lost_files = 0

    def read_new(self) -> bytes:
        inode, size, data = self.files.read_current(self.offset)
        if inode is None:
            return b""
        if self.inode is None:  # first read: anything already rotated out comes first
            # Read before the state moves on: a read that fails here leaves the next one to start over.
            rotated = b"".join(self.files.read_path(path, 0) for _, path in self.files.backups())
            self.inode, self.offset = inode, len(data)
            return rotated + data
        if inode == self.inode and size >= self.offset:
            self.offset += len(data)
            return data
        # A new inode, or the same inode smaller than what we read (a deleted backup's inode reused).
        return self._after_rotation()

    def close(self) -> None:
        """Nothing held by default; a source that reads through a process stops it."""

    def skip_existing(self) -> None:
        """Start from the live file's current end (attaching to a cluster that has history), never in the
        middle of a line. Only the file's last bytes are read, however long its history."""
        window = 1 << 16
        while True:
            inode, size, _ = self.files.read_current(_PAST_THE_END)
            if inode is None:
                self.inode, self.offset = None, 0
                return
            start = max(0, size - window)
            again, _, data = self.files.read_current(start)
            if again != inode:
                continue  # rotated in between: look at the new file
            cut = len(data) if not data or data.endswith(b"\n") else data.rfind(b"\n") + 1
            if cut > 0 or start == 0:
                self.inode, self.offset = inode, start + cut
                return
            window *= 16  # a line longer than the window is being written: look further back

    def _after_rotation(self) -> bytes:
        chunks = []
        backups = self.files.backups()
        position = next((i for i, (ino, _) in enumerate(backups) if ino == self.inode), None)
        if position is None:
            self.lost_files += 1
        else:
            # The rest of the file we were reading, then any file rotated out after it.
            chunks.append(self.files.read_path(backups[position][1], self.offset))
            chunks += [self.files.read_path(path, 0) for _, path in backups[position + 1 :]]
        inode, _, data = self.files.read_current(0)
        self.rotations += 1
        self.inode, self.offset = inode, len(data)
        chunks.append(data)
        return b"".join(chunks)


class LocalFiles:
    """A log on this machine's file system."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        try:
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                f.seek(min(offset, st.st_size))
                return st.st_ino, st.st_size, f.read()
        except FileNotFoundError:
            return None, 0, b""

    def backups(self) -> list[tuple[int, str]]:
        pattern = f"{self.path.stem}-*{self.path.suffix}"
        return [(p.stat().st_ino, str(p)) for p in sorted(self.path.parent.glob(pattern))]

    def read_path(self, path: str, offset: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()


class FileSource(LogFollower):
    """A log file on this machine (a replayed log, a bind-mounted directory), rotation included."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(LocalFiles(path))
        self.path = Path(path)
