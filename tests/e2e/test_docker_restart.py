"""The Docker daemon restarted during a session: an assert that is waiting fails with one line saying the
stream is gone and why, within its timeout; the next assert, after Docker and the node are back (the restart
fell between the two), sees new requests through a stream started again; and the run still ends with a
truthful teardown line and no leaked container.

It stops the real dockerd, which stops every container on the machine: opt in with
PYTEST_KIND_AUDIT_TEST_DOCKER_RESTART=1 (CI runs it as its own step), on a machine where no one else's
cluster runs. dockerd is started again with ci/ensure-docker.sh, with the arguments CI gives it."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest

from .helpers import delete_cluster, node_containers

OPT_IN = "PYTEST_KIND_AUDIT_TEST_DOCKER_RESTART"
ENSURE_DOCKER = Path(__file__).resolve().parents[2] / "ci" / "ensure-docker.sh"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get(OPT_IN) != "1", reason=f"restarts dockerd for every container: set {OPT_IN}=1"),
]

RESTART_SUITE = """
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from pytest_kind_audit import assert_audited
from pytest_kind_audit.exceptions import CommandError


def stop_docker():
    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 300
    while Path(f"/proc/{{pid}}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_docker_restarted_while_an_assert_waits(audited_cluster):
    audited_cluster.kubectl("create", "namespace", "before-restart")
    assert_audited(verb="create", resource="namespaces", name="before-restart")
    stopping = threading.Timer(1.0, stop_docker)  # while the assert below is waiting
    stopping.start()
    started = time.monotonic()
    try:
        assert_audited(verb="create", resource="namespaces", name="never-made", timeout={timeout})
    finally:
        Path("waited").write_text(repr(time.monotonic() - started))
        stopping.join()
        subprocess.run(["bash", {ensure!r}], check=True, capture_output=True)


NAMESPACE = "apiVersion: v1\\nkind: Namespace\\nmetadata:\\n  name: after-restart\\n"


def test_an_assert_after_docker_restarted(audited_cluster):
    # Docker stopped and started again since the last assert read the stream, and the node with it (kind's
    # restart policy). Once its API server answers, new requests must reach the asserts: the stream is
    # started again, never silently stale. (apply: a retry after a lost answer is no error.)
    deadline = time.monotonic() + 180
    while True:
        try:
            audited_cluster.kubectl("apply", "-f", "-", input=NAMESPACE, timeout=20)
            break
        except CommandError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert_audited(verb="create", resource="namespaces", name="after-restart", timeout={timeout})
"""


def test_docker_restarted_during_a_session(pytester: pytest.Pytester, state_dir: Path) -> None:
    name = "dr-" + secrets.token_hex(3)
    timeout = 60
    pytester.makepyfile(test_restart=RESTART_SUITE.format(timeout=timeout, ensure=str(ENSURE_DOCKER)))
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(failed=1, passed=1)
        out = result.stdout.str()
        # The failure is one line: what broke and why, no traceback of the plugin's insides.
        gone = f"cannot read the audit log: the audit log stream of {name}-control-plane is gone: "
        during = _gone_line(out, "test_docker_restarted_while_an_assert_waits", gone)
        assert re.search(r"is gone: (Docker does not answer \(.+\)|the node container is \w+ \(exit code -?\d+\))$",
                         during), during  # fmt: skip
        assert "Traceback" not in out
        waited = float((pytester.path / "waited").read_text())
        assert waited < timeout, f"the assert waited {waited:.0f}s, past its timeout of {timeout}s"
        # The teardown line is true: the cluster is gone once Docker is back.
        result.stdout.fnmatch_lines([f"kind-audit: cluster {name} created 1 time, deleted in *s*"])
        assert node_containers(name) == []
    finally:
        delete_cluster(name)


def _gone_line(out: str, test: str, gone: str) -> str:
    """The line of ``test``'s failure section that says the stream is gone."""
    section = re.search(rf"_+ {test} _+\n(.*?)(?=\n_{{3,}} |\n=+ )", out, re.S)
    assert section, out[-3000:]
    lines = [line for line in section.group(1).splitlines() if gone in line]
    assert len(lines) == 1, section.group(1)[-3000:]
    return lines[0]
