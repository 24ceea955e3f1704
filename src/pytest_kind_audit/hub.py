"""One cluster per run, however many processes the run has (pytest-xdist workers).

The run's owner (the xdist controller, or the only process) makes a state directory and passes it to the
workers. The first process that needs the cluster makes it under a file lock and records it there; the
others attach to it. Only the owner deletes it, at the very end, after every worker has finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .exceptions import ClusterError
from .ownership import alive, process_start

__all__ = ["ClusterHub", "HubState"]

T = TypeVar("T")
STATE_PREFIX = "pytest-kind-audit-"
OWNER_FILE = "owner.json"


@dataclass
class HubState:
    status: str = "new"  # new | ready | failed
    name: str = ""
    workdir: str = ""  # the creating (or reusing) process's working directory for the cluster
    created: bool = False  # this run created the cluster (and so deletes it, unless kept)
    reused: bool = False
    creations: int = 0  # `kind create cluster` calls this run made
    message: str = ""
    #: Stale clusters of interrupted runs, name -> summary line: removed, and those that could not be.
    reaped: dict[str, str] = field(default_factory=dict)
    not_reaped: dict[str, str] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)
    #: At the end of the run: whether the cluster's containers are gone, and the summary's words for it.
    deleted: bool = False
    deletion: str = ""


class ClusterHub:
    def __init__(self, state_dir: Path, run_id: str, owner_pid: int, owner_start: str, worker_id: str = "") -> None:
        self.state_dir = state_dir
        self.run_id = run_id
        self.owner_pid = owner_pid
        self.owner_start = owner_start
        self.worker_id = worker_id

    @classmethod
    def new_run(cls) -> ClusterHub:
        """The owner's hub: a fresh state directory and run id. State directories of runs that were killed
        go first: they may hold per-test event records with unredacted Secret data."""
        remove_abandoned()
        state_dir = Path(tempfile.mkdtemp(prefix=STATE_PREFIX))
        hub = cls(state_dir, secrets.token_hex(6), os.getpid(), process_start(os.getpid()))
        (state_dir / OWNER_FILE).write_text(json.dumps({"pid": hub.owner_pid, "start": hub.owner_start}))
        return hub

    def to_workerinput(self) -> dict[str, Any]:
        return {"state_dir": str(self.state_dir), "run_id": self.run_id, "owner_pid": self.owner_pid,
                "owner_start": self.owner_start}  # fmt: skip

    @classmethod
    def for_worker(cls, data: dict[str, Any], worker_id: str) -> ClusterHub:
        return cls(Path(data["state_dir"]), data["run_id"], data["owner_pid"], data["owner_start"], worker_id)

    @property
    def is_worker(self) -> bool:
        return bool(self.worker_id)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.state_dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> HubState:
        try:
            return HubState(**json.loads((self.state_dir / "state.json").read_text()))
        except FileNotFoundError:
            return HubState()

    def _write(self, state: HubState) -> None:
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, self.state_dir / "state.json")

    def get(self, make: Callable[[HubState], T], attach: Callable[[HubState], T]) -> T:
        """The run's cluster: made by the first caller of the run, attached to by the others.

        ``make`` may update the state it gets (created, reused, reaped); a failure is recorded, so the
        other workers report it instead of trying again."""
        with self._locked():
            state = self.read()
            if state.status == "failed":
                raise ClusterError(f"{state.message} (reported by the worker that tried to create it)")
            if self.worker_id and self.worker_id not in state.workers:
                state.workers.append(self.worker_id)
            if state.status == "ready":
                self._write(state)
                return attach(state)
            try:
                result = make(state)
            except BaseException as exc:
                state.status, state.message = "failed", str(exc) or type(exc).__name__
                self._write(state)
                raise
            state.status = "ready"
            self._write(state)
            return result

    def finish(self, delete: Callable[[HubState], None]) -> HubState:
        """Owner only, after every worker has finished: ``delete`` what this run made (it updates the
        state), then drop the state directory."""
        state = self.read()
        try:
            delete(state)
        finally:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return state


def remove_abandoned(parent: Path | None = None) -> list[Path]:
    """Remove the state directories of runs whose owner process is gone; return them."""
    removed = []
    for directory in Path(parent or tempfile.gettempdir()).glob(STATE_PREFIX + "*"):
        try:
            owner = json.loads((directory / OWNER_FILE).read_text())
            if alive(int(owner["pid"]), str(owner["start"])):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or still being made
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed
