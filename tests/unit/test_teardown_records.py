"""What deletion reports, and the state a killed run leaves behind (no cluster needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_kind_audit.deletion import Deletion
from pytest_kind_audit.hub import OWNER_FILE, remove_abandoned
from pytest_kind_audit.ownership import process_start


def test_deleted_only_when_nothing_is_left() -> None:
    assert Deletion("c", seconds=1.23).describe() == "deleted in 1.2s"
    assert Deletion("c", seconds=9.0, thawed=3, retries=1).describe() == (
        "deleted in 9.0s after thawing 3 frozen cgroups and 1 retry"
    )
    left = Deletion("c", left=["c-control-plane", "c-worker"], retries=2)
    assert not left.deleted
    assert left.describe() == (
        "NOT deleted: c-control-plane, c-worker still exist after 2 retries; "
        "remove with: docker rm -f c-control-plane c-worker"
    )
    unknown = Deletion("c", error="cannot check its containers: Docker is not reachable")
    assert not unknown.deleted
    assert unknown.describe() == (
        "NOT deleted: cannot check its containers: Docker is not reachable; remove with: kind delete cluster --name c"
    )


def test_state_dirs_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_start = process_start(dead.pid)
    dead.wait()
    runs = {}
    for label, pid, start in (("dead", dead.pid, dead_start), ("alive", os.getpid(), process_start(os.getpid()))):
        directory = tmp_path / f"pytest-kind-audit-{label}"
        (directory / "html").mkdir(parents=True)
        (directory / "html" / "1.jsonl").write_text('{"events": ["secret"]}\n')
        (directory / OWNER_FILE).write_text(json.dumps({"pid": pid, "start": start}))
        runs[label] = directory
    half_made = tmp_path / "pytest-kind-audit-new"
    half_made.mkdir()  # no owner file yet: a run being set up, never removed
    assert remove_abandoned(tmp_path) == [runs["dead"]]
    assert not runs["dead"].exists()
    assert runs["alive"].exists() and half_made.exists()
