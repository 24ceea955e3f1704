"""Teardown that always finishes and never says "deleted" when it did not: a pod sandbox's cgroup v1
freezer left FROZEN (what made Docker fail to kill nodes), a kind that leaves the node behind, and a
cluster of the requested name that is somebody else's."""

from __future__ import annotations

import secrets
import stat
import subprocess
from pathlib import Path

import pytest

from .helpers import delete_cluster, foreign_cluster, node_containers

pytestmark = pytest.mark.e2e

CGROUP_V1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()

FREEZING_SUITE = """
import subprocess

def test_freezes_every_pod(audited_cluster):
    # Every pod's processes, the control plane's included, into the cgroup v1 refrigerator: a frozen
    # process ignores even SIGKILL, so the node's init cannot finish and Docker cannot kill the node.
    node = audited_cluster.node
    script = (
        "pods=$(find /sys/fs/cgroup/freezer -maxdepth 2 -type d -name '*kubepods*' | head -n 1); "
        'echo FROZEN > "$pods/freezer.state"; cat "$pods/freezer.state"'
    )
    out = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("FROZEN", "FREEZING")
"""


@pytest.mark.skipif(not CGROUP_V1, reason="the cgroup v1 freezer exists on cgroup v1 hosts only")
def test_a_frozen_pod_cgroup_is_thawed_and_the_cluster_deleted(pytester: pytest.Pytester, state_dir: Path) -> None:
    name = "fz-" + secrets.token_hex(3)
    pytester.makepyfile(test_freeze=FREEZING_SUITE)
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [f"kind-audit: cluster {name} created 1 time, deleted in *s after thawing * frozen cgroup* and 1 retr*"]
        )
        assert node_containers(name) == [], "the summary said deleted: the containers must be gone"
        assert result.ret == pytest.ExitCode.OK
    finally:
        delete_cluster(name)


STUCK_KIND = """#!/bin/sh
# The real kind, except that 'delete' claims success and deletes nothing (as when Docker fails to kill a
# node and kind still exits 0).
if [ "$1" = delete ]; then exit 0; fi
exec {kind} "$@"
"""


def test_a_cluster_left_behind_is_reported_and_fails_the_run(
    pytester: pytest.Pytester, state_dir: Path, kind_binary: str
) -> None:
    name = "st-" + secrets.token_hex(3)
    wrapper = pytester.path / "stuck-kind"
    wrapper.write_text(STUCK_KIND.format(kind=kind_binary))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    pytester.makepyfile("def test_ok(audited_cluster):\n    pass\n")
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", f"--kind-audit-kind-binary={wrapper}",
                                               "-p", "no:cacheprovider", timeout=900)  # fmt: skip
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                f"kind-audit: cluster {name} created 1 time, NOT deleted: {name}-control-plane still exists after"
                f" * retries; remove with: docker rm -f {name}-control-plane"
            ]
        )
        assert result.ret == pytest.ExitCode.TESTS_FAILED, "a run that leaked a cluster must not look clean"
        assert node_containers(name) == [f"{name}-control-plane"], "the summary told the truth"
    finally:
        delete_cluster(name)


def test_a_cluster_of_the_same_name_is_left_alone(pytester: pytest.Pytester, state_dir: Path) -> None:
    name = "theirs-" + secrets.token_hex(3)
    with foreign_cluster(name):
        pytester.makepyfile("def test_x(audited_cluster):\n    pass\n")
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                f"*kind-audit: a kind cluster named '{name}' already exists and was left alone: pass "
                "--kind-audit-reuse-cluster to use it (if this plugin made it), or pick another --kind-audit-cluster-name"
            ]
        )
        assert node_containers(name) == [f"{name}-control-plane"], "never delete a cluster the plugin did not make"
        assert "kind-audit: cluster" not in result.stdout.str(), "no cluster was created, so none is reported"
        assert not list(state_dir.glob(f"clusters/{name}*")), "no record or working directory of a cluster never made"


def test_a_users_own_kind_cluster_of_that_name_survives_the_run(
    pytester: pytest.Pytester, state_dir: Path, kind_binary: str, node_image: str
) -> None:
    """A real cluster made by plain `kind create cluster`, then a run asking for the same name: the run
    stops before creating anything, says why and how to go on, and deletes nothing."""
    name = "users-" + secrets.token_hex(3)
    scratch = pytester.path / "users-kubeconfig"
    image = ["--image", node_image] if node_image else []
    subprocess.run([kind_binary, "create", "cluster", "--name", name, "--kubeconfig", str(scratch), *image],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    try:
        pytester.makepyfile("def test_x(audited_cluster):\n    pass\n")
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*kind-audit: a kind cluster named '{name}' already exists and was left alone*"])
        assert node_containers(name) == [f"{name}-control-plane"]
        running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", f"{name}-control-plane"],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert running == "true", "the user's cluster still runs"
        assert result.ret != pytest.ExitCode.OK
    finally:
        subprocess.run([kind_binary, "delete", "cluster", "--name", name, "--kubeconfig", str(scratch)],
                       capture_output=True, check=False)  # fmt: skip
    assert node_containers(name) == []
