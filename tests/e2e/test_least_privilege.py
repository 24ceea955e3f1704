"""Least privilege on a real cluster: a controller-like program runs as a ServiceAccount; the RBAC derived from
what it did is exact (the authorizer allows all of it, and refuses it with any rule or verb less), a broad Role
fails the least-privilege assertion, the derived one passes, and any rule taken away breaks the program."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from tests.unit.test_readme import readme_block

from pytest_kind_audit import AuditedCluster, assert_audited, assert_not_audited
from pytest_kind_audit.identities import HOUSEKEEPING_USER, Identity

pytestmark = pytest.mark.e2e

# Lists the ConfigMaps of its namespace, patches one, reads one Secret by name, creates a ConfigMap: each step
# one kubectl call as whoever KUBECONFIG says.
PROGRAM = """
import subprocess, sys
ns, suffix = sys.argv[1], sys.argv[2]
def kubectl(*args):
    done = subprocess.run(["kubectl", "-n", ns, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr)
kubectl("get", "configmaps", "-o", "name")
kubectl("patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"seen":"yes"}}')
kubectl("get", "secret", "credentials", "-o", "name")
kubectl("create", "configmap", "result-" + suffix, "--from-literal=done=yes")
"""

EXPECTED_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "create"]},
    # kubectl patch reads the object first: a get, by name
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["credentials"], "verbs": ["get"]},
]


def run_program(identity: Identity, namespace: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, namespace, secrets.token_hex(3)],
        env={"PATH": os.environ["PATH"], **identity.env, "HOME": str(identity.kubeconfig.parent)},
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def role(namespace: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace}, "rules": rules}  # fmt: skip


@pytest.fixture
def workspace(audited_cluster: AuditedCluster) -> str:
    """A namespace with the program's ConfigMap and Secret, made by the housekeeping identity."""
    namespace = "lp-" + secrets.token_hex(3)
    keeper = audited_cluster.housekeeper
    keeper.kubectl("create", "namespace", namespace)
    keeper.kubectl("-n", namespace, "create", "configmap", "settings", "--from-literal=a=b")
    keeper.kubectl("-n", namespace, "create", "secret", "generic", "credentials", "--from-literal=k=v")
    return namespace


def test_identities_are_not_admin_and_their_setup_stays_out_of_the_window(
    audited_cluster: AuditedCluster, workspace: str
) -> None:
    sa = audited_cluster.service_account(namespace=workspace)
    assert sa.user.startswith(f"system:serviceaccount:{workspace}:kind-audit-sa-")
    assert oct(sa.kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert not sa.can("list", "configmaps", namespace=workspace)
    failed = run_program(sa, workspace)
    assert failed.returncode != 0 and "forbidden" in failed.stderr
    audited_cluster.audit.assert_audited(user=sa.user, verb="list", resource="configmaps", code=403)
    user = audited_cluster.user_account(groups=["qa-team"])
    assert user.groups == ("qa-team", "system:authenticated")
    denied = subprocess.run(["kubectl", "--kubeconfig", str(user.kubeconfig), "get", "pods", "-n", workspace],
                            check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert denied.returncode != 0 and "forbidden" in denied.stderr
    assert_audited(user=user.user, group="qa-team", verb="list", resource="pods", code=403)
    # The account, its token and the reviews were the housekeeping identity's: in the session, not the window.
    assert_not_audited(user=HOUSEKEEPING_USER)
    audited_cluster.audit.assert_audited(user=HOUSEKEEPING_USER, verb="create", resource="serviceaccounts",
                                         subresource="token")  # fmt: skip


def test_derived_rbac_is_exact_and_checked_by_the_authorizer(audited_cluster: AuditedCluster, workspace: str) -> None:
    broad_sa = audited_cluster.service_account(namespace=workspace)
    everything = ["get", "list", "watch", "create", "update", "patch", "delete"]
    broad = role(workspace, "broad", [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": everything}])
    broad_sa.bind(broad)
    window = audited_cluster.window(label="broad run")
    ran = run_program(broad_sa, workspace)
    assert ran.returncode == 0, ran.stderr
    window.close()

    # What it did, as RBAC: exactly the five requests, names where the authorizer saw them.
    plan = audited_cluster.least_privilege(broad_sa.user, window)
    subject = plan[broad_sa.user]
    manifests = subject.manifests()
    assert [m["kind"] for m in manifests] == ["Role", "RoleBinding"]
    assert manifests[0]["rules"] == EXPECTED_RULES
    assert all(not r.is_resource for r in subject.already_granted)  # kubectl's discovery: granted to everyone

    # The broad Role fails the assertion, naming what was never used.
    with pytest.raises(AssertionError) as failure:
        audited_cluster.assert_least_privilege(broad_sa, [broad], events=window)
    message = str(failure.value)
    assert f"{broad_sa.user} is not least-privileged (5 distinct allowed requests in the window):" in message
    for unused in ("watch configmaps in", "delete secrets in", "list secrets in", "update configmaps in"):
        assert unused in message
    assert (
        "create secrets in" in message
        and "get secrets in " in message
        and "on any name, used only on credentials" in message
    )
    # ... and so does the live binding, read from the cluster.
    with pytest.raises(AssertionError, match="granted but never used"):
        audited_cluster.assert_least_privilege(broad_sa, events=window)

    # The authorizer agrees: the derived rules allow every request, and each rule and verb is needed.
    verification = audited_cluster.verify_rbac(subject)
    assert verification.ok, verification.message()
    assert verification.requests == 5 and verification.reviews >= 5 + 5

    # Re-run under the derived Role: the program works and the assertion passes.
    exact_sa = audited_cluster.service_account(namespace=workspace)
    derived = dict(manifests[0], metadata={"name": "derived", "namespace": workspace})
    exact_sa.bind(derived)
    again = audited_cluster.window(label="derived run")
    ran = run_program(exact_sa, workspace)
    assert ran.returncode == 0, ran.stderr
    again.close()
    audited_cluster.assert_least_privilege(exact_sa, [derived], events=again)
    audited_cluster.assert_least_privilege(exact_sa, events=again)

    # Any one rule taken away: a 403, and the assertion names the denied request.
    for i, missing in enumerate(EXPECTED_RULES):
        less_sa = audited_cluster.service_account(namespace=workspace)
        reduced = role(workspace, f"less-{i}", [r for r in EXPECTED_RULES if r is not missing])
        less_sa.bind(reduced)
        short = audited_cluster.window(label=f"without rule {i}")
        ran = run_program(less_sa, workspace)
        short.close()
        assert ran.returncode != 0 and "forbidden" in ran.stderr, missing
        with pytest.raises(AssertionError) as denied:
            audited_cluster.assert_least_privilege(less_sa, [reduced], events=short)
        verb, resource = missing["verbs"][0], missing["resources"][0]
        assert f"attempted and denied (1):\n  {verb} {resource}" in str(denied.value)


# The README's example is a test of this module, run as written against the session's cluster.
exec(compile(readme_block("## Least privilege: identities"), "README.md", "exec"))
