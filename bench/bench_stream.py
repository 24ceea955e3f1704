"""Reading the audit log of a real cluster: one `docker exec` per read (the old transport, kept here as the
baseline) against the long-lived reader shell in the node (the plugin's), same cluster, same run,
interleaved.

1. An assert whose event is already in the log: the time `assert_audited` takes (one read of nothing new).
2. Visibility: from `kubectl create configmap` returning to `assert_audited` returning, for each transport
   with its own waiting loop (old: sleeps from 50 ms doubling to 500 ms; new: a read every 10 ms).

Run: PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-3 python bench/bench_stream.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import bench_cluster

from pytest_kind_audit import AuditLog, AuditWindow
from pytest_kind_audit.follow import LogFollower
from pytest_kind_audit.kindconfig import AUDIT_LOG_PATH
from pytest_kind_audit.nodes import exec_output


class ExecFiles:
    """The old transport: every read is a new `docker exec` in the node."""

    _READ = 'exec 3<"$0" || exit 3; stat -L -c "%i %s" /dev/fd/3; tail -c +"$1" <&3'

    def __init__(self, container: object, path: str = AUDIT_LOG_PATH) -> None:
        self.container, self.path = container, path

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        code, out = exec_output(self.container, ["sh", "-c", self._READ, self.path, str(offset + 1)])  # type: ignore[arg-type]
        if code != 0 or b"\n" not in out:
            return None, 0, b""
        head, _, data = out.partition(b"\n")
        inode, size = head.split()
        return int(inode), int(size), data

    def backups(self) -> list[tuple[int, str]]:
        return []

    def read_path(self, path: str, offset: int) -> bytes:
        return exec_output(self.container, ["tail", "-c", f"+{offset + 1}", path])[1]  # type: ignore[arg-type]


def old_wait(window: AuditWindow, name: str, timeout: float = 10.0) -> None:
    """The old waiting loop: a read, then sleeps of 50 ms doubling to 500 ms between reads."""
    delay, deadline = 0.05, time.monotonic() + timeout
    while not window.events(verb="create", resource="configmaps", name=name):
        assert time.monotonic() < deadline, f"{name} never showed up"
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def new_wait(window: AuditWindow, name: str, timeout: float = 10.0) -> None:
    window.assert_audited(verb="create", resource="configmaps", name=name, timeout=timeout)


def pct(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  max {ordered[-1] * 1000:6.1f} ms"
    )


def main(n: int) -> None:
    with bench_cluster("bs") as (cluster, env):
        logs = {"old (exec per read)": AuditLog(LogFollower(ExecFiles(cluster.container))),
                "new (reader shell)": cluster.audit}  # fmt: skip
        waits: dict[str, Callable[[AuditWindow, str], None]] = {"old (exec per read)": old_wait,
                                                             "new (reader shell)": new_wait}  # fmt: skip
        written: dict[str, list[float]] = {k: [] for k in logs}
        visible: dict[str, list[float]] = {k: [] for k in logs}
        for i in range(n):
            for label, log in logs.items():  # interleaved: both see the same cluster state
                cm = f"cm-{i}-{'o' if label.startswith('old') else 'n'}"
                window = log.window(label="test")  # a test's window, as the fixtures open it
                cluster.kubectl("create", "configmap", cm, "-n", "default")
                returned = time.perf_counter()
                waits[label](window, cm)
                visible[label].append(time.perf_counter() - returned)
                started = time.perf_counter()  # the same event, already in the log: one more read
                window.assert_audited(verb="create", resource="configmaps", name=cm, timeout=0)
                written[label].append(time.perf_counter() - started)
        print(f"bench_stream: {n} ConfigMap creates per transport, {env.image}, Metadata policy")
        for label in logs:
            print(f"  {label:20s} assert on a written event: {pct(written[label])}")
            print(f"  {label:20s} kubectl returns -> assert returns: {pct(visible[label])}")
        old, new = (statistics.median(written[k]) for k in logs)
        print(f"  assert on a written event, median old / new: {old / new:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
