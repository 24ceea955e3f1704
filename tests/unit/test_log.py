from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pytest_kind_audit import AuditLog, FileSource, parse_text

LOGS = Path(__file__).parents[1] / "data" / "audit-logs"
REAL = (LOGS / "falcosecurity-falco-k8s_audit-trace-files.jsonl").read_bytes()


class ChunkedSource:
    """A log that grows by the given chunks, one chunk per read: the API server mid-write."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.written = b""
        self.reads: list[tuple[int, int]] = []

    def read(self, offset: int) -> bytes:
        if self.chunks:
            self.written += self.chunks.pop(0)
        data = self.written[offset:]
        self.reads.append((offset, len(data)))
        return data


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


def test_each_poll_reads_only_the_new_bytes() -> None:
    lines = REAL.splitlines(keepends=True)
    source = ChunkedSource([b"".join(lines[:10]), b"".join(lines[10:])])
    log = AuditLog(source)
    log.poll()
    log.poll()
    log.poll()
    first, second, third = source.reads
    assert first == (0, len(b"".join(lines[:10])))
    assert second[0] == first[1] and second[0] + second[1] == len(REAL)
    assert third == (len(REAL), 0)


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
