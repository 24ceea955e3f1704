from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pytest_kind_audit import AuditLog, FileSource, parse_text
from pytest_kind_audit.follow import LocalFiles, LogFollower

LOGS = Path(__file__).parents[1] / "data" / "audit-logs"
REAL = (LOGS / "falcosecurity-falco-k8s_audit-trace-files.jsonl").read_bytes()


class ChunkedSource:
    """A log that grows by the given chunks, one chunk per read: the API server mid-write."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def read_new(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class CountingFiles(LocalFiles):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[tuple[int, int]] = []

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        inode, size, data = super().read_current(offset)
        self.reads.append((offset, len(data)))
        return inode, size, data


def test_a_partial_last_line_is_held_back_until_its_newline(tmp_path: Path) -> None:
    line = (LOGS / "sysdiglabs-aks-audit-log-eventhub-sample.jsonl").read_bytes().splitlines(keepends=True)[0]
    path = tmp_path / "audit.log"
    path.write_bytes(line[:100])
    log = AuditLog(FileSource(path))
    assert log.poll() == 0
    assert len(log) == 0
    with path.open("ab") as f:
        f.write(line[100:])
    assert log.poll() == 1
    assert log.poll() == 0
    assert log.all()[0].verb == "get"


@pytest.mark.parametrize("seed", range(20))
def test_random_chunking_neither_loses_nor_duplicates_events(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(REAL)), 30))
    chunks = [REAL[a:b] for a, b in zip([0, *cuts], [*cuts, len(REAL)], strict=True)]
    source = ChunkedSource(chunks)
    log = AuditLog(source)
    for _ in range(len(chunks) + 2):
        log.poll()
    assert list(log.all()) == parse_text(REAL.decode())


def test_each_poll_reads_only_the_new_bytes(tmp_path: Path) -> None:
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines[:10]))
    files = CountingFiles(path)
    log = AuditLog(LogFollower(files))
    log.poll()
    with path.open("ab") as f:
        f.write(b"".join(lines[10:]))
    log.poll()
    log.poll()
    first, second, third = files.reads
    assert first == (0, len(b"".join(lines[:10])))
    assert second[0] == first[1] and second[0] + second[1] == len(REAL)
    assert third == (len(REAL), 0)
    assert list(log.all()) == parse_text(REAL.decode())


def rotate(path: Path, n: int) -> None:
    """What lumberjack does: rename the live file to <stem>-<time>.log; the next write starts a new one."""
    path.rename(path.with_name(f"{path.stem}-2026-11-28T00-00-{n:02d}.000{path.suffix}"))


@pytest.mark.parametrize("rotations_between_polls", [1, 2, 3])
def test_rotation_neither_loses_nor_duplicates_events(tmp_path: Path, rotations_between_polls: int) -> None:
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "kube-apiserver-audit.log"
    log = AuditLog(FileSource(path))
    cursor, n = 0, 0
    while cursor < len(lines):
        for _ in range(rotations_between_polls):
            with path.open("ab") as f:
                f.write(b"".join(lines[cursor : cursor + 5]))
            cursor += 5
            n += 1
            rotate(path, n)
        with path.open("ab") as f:  # the new live file gets a few lines before the next poll
            f.write(b"".join(lines[cursor : cursor + 2]))
        cursor += 2
        log.poll()
    assert list(log.all()) == parse_text(REAL.decode())
    assert log.source.rotations > 0  # type: ignore[attr-defined]


def test_a_deleted_backup_is_counted_as_lost(tmp_path: Path) -> None:
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "kube-apiserver-audit.log"
    path.write_bytes(b"".join(lines[:3]))
    source = FileSource(path)
    log = AuditLog(source)
    log.poll()
    with path.open("ab") as f:
        f.write(lines[3])
    rotate(path, 1)
    next(tmp_path.glob("kube-apiserver-audit-*.log")).unlink()  # --audit-log-maxbackup at work
    path.write_bytes(lines[4])
    log.poll()
    assert [e.audit_id for e in log.all()] == [
        e.audit_id for e in parse_text(b"".join([*lines[:3], lines[4]]).decode())
    ]
    assert source.lost_files == 1


def test_a_line_cut_by_a_crash_is_skipped_and_the_next_event_kept(tmp_path: Path) -> None:
    lines = [x for x in REAL.splitlines(keepends=True) if x.strip()]
    path = tmp_path / "audit.log"
    cut = lines[1][: len(lines[1]) // 2]  # the API server died mid-write; after restart it appends
    restarted = lines[2].replace(b'{"annotations"', b'{"kind":"Event","annotations"', 1)
    path.write_bytes(lines[0] + cut + restarted + lines[3])
    log = AuditLog(FileSource(path))
    log.poll()
    assert [e.audit_id for e in log.all()] == [
        e.audit_id for e in parse_text((lines[0] + restarted + lines[3]).decode())
    ]
    assert log.corrupt == [cut[:200]]


def test_skip_existing_starts_at_the_end(tmp_path: Path) -> None:
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines[:10]) + lines[10][:50])
    source = FileSource(path)
    source.skip_existing()
    log = AuditLog(source)
    with path.open("ab") as f:
        f.write(lines[10][50:] + lines[11])
    log.poll()
    assert [e.audit_id for e in log.all()] == [e.audit_id for e in parse_text((lines[10] + lines[11]).decode())]


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    log = AuditLog(FileSource(tmp_path / "nope.log"))
    assert log.poll() == 0 and len(log.all()) == 0


def test_window_holds_only_requests_received_in_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(REAL)
    log = AuditLog(FileSource(path))
    events = log.all()
    stamps = sorted({e.request_received_timestamp for e in events if e.request_received_timestamp})
    middle = stamps[len(stamps) // 2]
    window = AuditLog(FileSource(path)).window(middle)
    inside = window.all()
    assert inside and all(e.request_received_timestamp >= middle for e in inside)  # type: ignore[operator]
    assert len(inside) == sum(
        1 for e in events if e.request_received_timestamp and e.request_received_timestamp >= middle
    )
    window.close(stamps[-1])
    assert all(e.request_received_timestamp < stamps[-1] for e in window.all())  # type: ignore[operator]


def test_session_queries_default_to_response_complete(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes((LOGS / "liggitt-audit2rbac-demo-2017-v1beta1.jsonl").read_bytes())
    log = AuditLog(FileSource(path))
    assert len(log.events()) == 437
    assert len(log.events(stage=None)) == 757
    assert len(log.events(verb="list", impersonated_user="bob", code=403)) == 4


def test_window_opened_now_sees_nothing_old(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(REAL)
    log = AuditLog(FileSource(path))
    window = log.window(datetime.now(timezone.utc))
    assert len(window.all()) == 0


def test_skip_existing_reads_only_the_end_of_a_long_history(tmp_path: Path) -> None:
    """Attaching to a cluster with a long log reads its last bytes, not the whole file, and still starts
    at a line boundary, also when the last line is longer than the first look back."""
    path = tmp_path / "audit.log"
    history = REAL * 200  # a few MB of history
    long_partial = b'{"kind":"Event","x":"' + b"y" * 200_000  # a line being written, longer than 64 KiB
    path.write_bytes(history + long_partial)
    read: list[int] = []

    class Counting(LocalFiles):
        def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
            inode, size, data = super().read_current(offset)
            read.append(len(data))
            return inode, size, data

    source = LogFollower(Counting(path))
    source.skip_existing()
    assert source.offset == len(history)
    assert sum(read) < len(history) / 5, f"read {sum(read)} bytes of a {len(history)}-byte history"
    with path.open("ab") as f:
        f.write(b'"}\n' + REAL.splitlines(keepends=True)[0])
    log = AuditLog(source)
    # The line being written when we attached is read from its start once complete, then the next one.
    assert log.poll() == 2
    assert len(log.snapshot()[0].raw["x"]) == 200_000


def test_a_first_read_that_fails_midway_is_read_again_in_full(tmp_path: Path) -> None:
    # The reader can break between the live file and its rotated backups (a node still starting while kind
    # creates it): the next poll must return both, the backups first, nothing lost and nothing twice.
    lines = REAL.splitlines(keepends=True)
    path = tmp_path / "kube-apiserver-audit.log"
    path.write_bytes(b"".join(lines[:4]))
    rotate(path, 1)
    path.write_bytes(b"".join(lines[4:7]))

    class BreaksOnce(LocalFiles):
        broke = False

        def backups(self) -> list[tuple[int, str]]:
            if not self.broke:
                self.broke = True
                raise OSError("the reader's stream broke")
            return super().backups()

    follower = LogFollower(BreaksOnce(path))
    with pytest.raises(OSError, match="stream broke"):
        follower.read_new()
    assert follower.read_new() == b"".join(lines[:7])
    assert follower.read_new() == b""
