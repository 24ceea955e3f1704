"""Whole pytest runs that create their own audited clusters, as a user would: the README example at
--kind-audit-level=RequestResponse, a failing test's audit section, keep-cluster, a user's kind config,
and Ctrl-C. Each run is a separate pytest process with its own cluster."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples" / "test_example.py"


def node_containers(cluster: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=io.x-k8s.kind.cluster={cluster}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


@pytest.fixture
def run_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("PYTEST_KIND_AUDIT_REQUIRE", "1")


@pytest.mark.usefixtures("run_env")
def test_readme_example_at_request_response_keeps_the_cluster_and_reports_failures(
    pytester: pytest.Pytester, kind_binary: str
) -> None:
    name = "ex-" + secrets.token_hex(3)
    shutil.copy(EXAMPLES, pytester.path / "test_example.py")
    pytester.makepyfile(
        test_failing="""
        from pytest_kind_audit import assert_audited

        def test_fails_with_its_events(audited_cluster):
            audited_cluster.kubectl("create", "namespace", "seen-by-the-report")
            assert_audited(verb="delete", resource="namespaces", name="seen-by-the-report", timeout=1)
        """
    )
    try:
        result = pytester.runpytest_subprocess(
            "--kind-audit-level=RequestResponse", f"--kind-audit-cluster-name={name}", "--kind-audit-keep-cluster",
            "-p", "no:cacheprovider", timeout=900,
        )  # fmt: skip
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines(
            [f"kind-audit: level=RequestResponse, cluster={name} (created), *keep=yes, reuse=no, require=yes*"]
        )
        result.stdout.fnmatch_lines([
            "E       AssertionError: expected at least 1 audit event matching the query, found 0",
            "E         query:    verb='delete' resource='namespaces' name='seen-by-the-report' stage='ResponseComplete'",
            "E         searched: * events in the window of test_fails_with_its_events (*), waited 1.*s",
            "E         closest events (* shown, ranked by number of differing fields):",
            "E           1. *  create  namespaces  seen-by-the-report  user=kubernetes-admin  code=201",
            "E                differs: verb: 'create' is not 'delete'",
        ])  # fmt: skip
        result.stdout.fnmatch_lines(
            ["*- kind-audit events (* in this test) -*", "*create  namespaces  seen-by-the-report*"]
        )
        result.stdout.fnmatch_lines([f"kind-audit: cluster kept; delete it with: * delete cluster --name {name}"])
        assert node_containers(name) == [f"{name}-control-plane"]
    finally:
        subprocess.run([kind_binary, "delete", "cluster", "--name", name], capture_output=True, check=False)
    assert node_containers(name) == []


@pytest.mark.usefixtures("run_env")
def test_user_kind_config_is_merged_and_ctrl_c_deletes_the_cluster(pytester: pytest.Pytester, kind_binary: str) -> None:
    name = "int-" + secrets.token_hex(3)
    config = pytester.path / "kind.yaml"
    config.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  labels:\n    team: audit\n"
    )
    pytester.makepyfile(
        test_a="""
        import os, signal
        from pytest_kind_audit import assert_audited

        def test_1_users_config_applied(audited_cluster):
            out = audited_cluster.kubectl("get", "nodes", "-l", "team=audit", "-o", "name")
            assert out.strip() == f"node/{audited_cluster.name}-control-plane"
            assert_audited(verb="list", resource="nodes")

        def test_2_interrupted(audited_cluster):
            os.kill(os.getpid(), signal.SIGINT)

        def test_3_never_runs():
            pass
        """
    )
    try:
        result = pytester.runpytest_subprocess(
            f"--kind-audit-kind-config={config}", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
            timeout=900,
        )  # fmt: skip
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-3000:]
        result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
        result.stdout.fnmatch_lines(["*1 passed*"])
        assert node_containers(name) == [], "the interrupted run leaked its cluster"
    finally:
        subprocess.run([kind_binary, "delete", "cluster", "--name", name], capture_output=True, check=False)
