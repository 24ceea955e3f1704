"""Least privilege from audit logs: requests as the authorizer saw them, exact rules, decisions by annotation,
and granted-versus-used, on real logs (the audit2rbac demo, AKS, Falco's minikube traces, our own kind cluster)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kind_audit.__main__ import main
from pytest_kind_audit.events import AuditEvent, parse_text
from pytest_kind_audit.exceptions import RbacError
from pytest_kind_audit.leastprivilege import build_rules, compare_privilege, derive_rbac, roles_as_grants
from pytest_kind_audit.rbac import Grant, Request, Rule, load_rbac, request_of

DATA = Path(__file__).parents[1] / "data" / "audit-logs"
KIND_REQUEST_LOG = Path(__file__).parents[2] / "bench" / "data" / "kind-v1-request.jsonl.gz"


def events_of(name: str) -> list[AuditEvent]:
    return parse_text((DATA / name).read_text())


@pytest.fixture(scope="module")
def kind_events() -> list[AuditEvent]:
    return parse_text(gzip.decompress(KIND_REQUEST_LOG.read_bytes()).decode())


def with_changes(event: AuditEvent, **changes: Any) -> AuditEvent:
    data = json.loads(json.dumps(dict(event.raw)))
    data.update(changes)
    return AuditEvent.from_json(data)


# -- what the authorizer saw ------------------------------------------------------------------------------------


def test_a_plain_create_has_no_name_although_the_audit_layer_recorded_the_bodys(kind_events: list[AuditEvent]) -> None:
    create = next(e for e in kind_events if e.verb == "create" and e.resource == "configmaps" and e.name)
    request = request_of(create)
    assert request == Request("create", "", "configmaps", "", create.namespace, "")


def test_a_subresource_create_and_a_named_get_carry_the_name_from_the_url(kind_events: list[AuditEvent]) -> None:
    token = next(e for e in kind_events if e.verb == "create" and e.subresource == "token")
    assert request_of(token) == Request("create", "", "serviceaccounts", "token", token.namespace, token.name)
    assert token.name and f"/serviceaccounts/{token.name}/token" in token.request_uri
    get = next(e for e in kind_events if e.verb == "get" and e.resource == "pods" and e.name)
    assert request_of(get) == Request("get", "", "pods", "", get.namespace, get.name)


def test_namespaces_by_name_and_a_list_with_a_name_field_selector(kind_events: list[AuditEvent]) -> None:
    ns_get = next(e for e in kind_events if e.verb == "get" and e.resource == "namespaces" and e.name)
    assert request_of(ns_get) == Request("get", "", "namespaces", "", ns_get.namespace, ns_get.name)
    lst = next(e for e in kind_events if e.verb in ("list", "watch") and "fieldSelector=metadata.name" in e.request_uri)
    request = request_of(lst)
    assert request is not None and request.name and request.name in lst.request_uri
    plain = with_changes(lst, requestURI=lst.path + "?fieldSelector=metadata.name%21%3Dx")  # != selects no name
    assert request_of(plain).name == ""  # type: ignore[union-attr]


def test_non_resource_requests_are_paths(kind_events: list[AuditEvent]) -> None:
    discovery = next(e for e in kind_events if e.object_ref is None and e.path.startswith("/api"))
    assert request_of(discovery) == Request(discovery.verb, path=discovery.path)


# -- rules --------------------------------------------------------------------------------------------------------


def test_rules_never_grant_a_pair_that_was_not_requested() -> None:
    requests = [
        Request("get", "", "pods", namespace="ns", name="a"),
        Request("patch", "", "pods", namespace="ns", name="b"),
        Request("get", "", "configmaps", namespace="ns", name="a"),
        Request("list", "", "configmaps", namespace="ns"),
        Request("get", "", "configmaps", namespace="ns", name="z"),
        Request("get", path="/healthz"),
    ]
    rules = build_rules(requests)
    grants = [Grant(r, "ns", "derived") for r in rules]
    for r in requests:
        assert any(g.allows(r) for g in grants) or not r.is_resource, r
    assert not any(g.allows(Request("patch", "", "pods", namespace="ns", name="a")) for g in grants)
    assert not any(g.allows(Request("get", "", "pods", namespace="ns", name="b")) for g in grants)
    assert [r.to_dict() for r in rules] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "z"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["b"], "verbs": ["patch"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
    ]


def test_rule_matching_follows_rbac() -> None:
    scale = Rule(("get",), ("apps",), ("*/scale",))
    assert scale.allows(Request("get", "apps", "deployments", "scale", "ns", "d"))
    assert not scale.allows(Request("get", "apps", "deployments", "", "ns", "d"))
    named = Rule(("list",), ("",), ("pods",), ("only",))
    assert not named.allows(Request("list", "", "pods", namespace="ns"))  # names never cover an unnamed request
    assert Rule(("get",), non_resource_urls=("/apis/*",)).allows(Request("get", path="/apis/apps/v1"))
    role_grant = Grant(Rule(("get",), ("",), ("pods",)), "ns", "Role/x")
    assert not role_grant.allows(Request("get", "", "pods", namespace="other", name="p"))


# -- derivation ---------------------------------------------------------------------------------------------------


def test_the_audit2rbac_demo_bob_gets_list_pods_in_default_and_his_denials_listed_apart() -> None:
    plan = derive_rbac(events_of("liggitt-audit2rbac-demo-head-v1-relabelled.jsonl"), "bob")
    assert plan.manifests()[0] == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "kind-audit:bob", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }  # fmt: skip
    assert plan.manifests()[1]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]
    bob = plan["bob"]
    assert sorted(r.describe() for r in bob.denied) == [
        "list nodes (cluster-wide)", "list pods in default", "list pods in ns1",
    ]  # fmt: skip
    assert all(r.path.startswith(("/api", "/version")) for r in bob.already_granted)  # discovery: granted to everyone
    text = plan.to_yaml()
    assert "judged by the response code" in text and "#   attempted, denied: list nodes (cluster-wide)" in text
    assert list(yaml.safe_load_all(text)) == plan.manifests()


def test_the_decision_annotation_wins_over_the_code(kind_events: list[AuditEvent]) -> None:
    create = next(e for e in kind_events if e.verb == "create" and e.resource == "configmaps" and e.code == 201)
    user = create.username
    admission_denied = with_changes(create, auditID="a1", responseStatus={"metadata": {}, "code": 403})
    authz_denied = with_changes(
        create, auditID="a2", requestURI="/api/v1/namespaces/elsewhere/configmaps", objectRef={
            "resource": "configmaps", "namespace": "elsewhere", "apiVersion": "v1"},
        annotations={"authorization.k8s.io/decision": "forbid"}, responseStatus={"metadata": {}, "code": 403},
    )  # fmt: skip
    plan = derive_rbac([admission_denied, authz_denied], user)
    assert list(plan[user].allowed) == [Request("create", "", "configmaps", "", create.namespace)]
    assert list(plan[user].denied) == [Request("create", "", "configmaps", "", "elsewhere")]
    assert plan.assumptions[1:] == []  # decided by annotations: nothing assumed from codes


def test_several_subjects_at_once_and_ones_groups_grants_left_out(kind_events: list[AuditEvent]) -> None:
    users = sorted({e.username for e in kind_events if e.username.startswith("system:serviceaccount:kube-system:")})
    assert len(users) >= 3
    live_like = load_rbac([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "everything-get"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
         "roleRef": {"kind": "ClusterRole", "name": "everything-get"},
         "subjects": [{"kind": "Group", "name": "system:serviceaccounts:kube-system"}]},
    ])  # fmt: skip
    plan = derive_rbac(kind_events, users[:3], existing=live_like)
    assert plan.assumptions == []
    for user in users[:3]:
        s = plan[user]
        assert "system:serviceaccounts:kube-system" in s.groups and "system:authenticated" in s.groups
        assert all(r.verb == "get" and r.is_resource for r in s.already_granted)
        assert not any(r.verb == "get" and r.is_resource for r in s.needed)
        for m in s.manifests():
            if m["kind"].endswith("Binding"):
                assert m["subjects"] == [
                    {"kind": "ServiceAccount", "name": user.rsplit(":", 1)[1], "namespace": "kube-system"}
                ]


def test_a_subject_with_no_request_names_those_that_made_some() -> None:
    with pytest.raises(RbacError, match=r"no request by carol in these events; requests were made by: .*bob"):
        derive_rbac(events_of("liggitt-audit2rbac-demo-head-v1-relabelled.jsonl"), ["bob", "carol"])


def test_events_without_user_object_ref_or_annotations_do_not_break_it() -> None:
    bare = [AuditEvent.from_json({"verb": "get", "requestURI": "/healthz", "stage": "ResponseComplete"}),
            AuditEvent.from_json({"user": {"username": "u"}, "stage": "ResponseComplete"}),
            AuditEvent.from_json({"user": {"username": "u"}, "verb": "get", "requestURI": "/version",
                                  "responseStatus": {"code": 200}, "stage": "ResponseComplete"})]  # fmt: skip
    plan = derive_rbac(bare, "u")
    assert list(plan["u"].allowed) == [Request("get", path="/version")]


# -- granted against used -----------------------------------------------------------------------------------------


def test_a_broad_role_is_named_verb_by_verb_and_the_derived_one_passes() -> None:
    plan = derive_rbac(events_of("sysdiglabs-aks-audit-log-eventhub-sample.jsonl"), "aksService")
    subject = plan["aksService"]
    broad = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "broad"},
              "rules": [{"apiGroups": ["", "storage.k8s.io"], "resources": ["*"], "verbs": ["get", "list"]},
                        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]}]  # fmt: skip
    report = compare_privilege(roles_as_grants(broad, subject.user), subject)
    assert not report.ok
    assert report.unused == [
        "get * on any name, used only on aks-agentpool-35488936-vmss000002, coredns  (ClusterRole/broad)",
        "get *.storage.k8s.io on any name, used only on azurefile, azurefile-premium, default, managed-premium"
        "  (ClusterRole/broad)",
        "list *  (ClusterRole/broad)",
        "list *.storage.k8s.io  (ClusterRole/broad)",
        "* secrets  (ClusterRole/broad)",
    ]
    assert "granted but never used (5):" in report.message()
    excused = compare_privilege(
        roles_as_grants(broad, subject.user), subject, allow_unused=["get *", "list *.storage.k8s.io", "* secrets"]
    )
    assert excused.unused == ["list *  (ClusterRole/broad)"]  # "*" in an entry is any resource, in any group
    assert compare_privilege(roles_as_grants(broad, subject.user), subject, allow_unused=["* *"]).ok
    derived = [m for m in subject.manifests() if not m["kind"].endswith("Binding")]
    needed_only = compare_privilege(roles_as_grants(derived, subject.user), subject)
    assert needed_only.unused == [] and needed_only.ok


def test_denied_requests_fail_the_comparison_with_evidence() -> None:
    plan = derive_rbac(events_of("liggitt-audit2rbac-demo-head-v1-relabelled.jsonl"), "bob")
    derived = [m for m in plan["bob"].manifests() if not m["kind"].endswith("Binding")]
    report = compare_privilege(roles_as_grants(derived, "bob"), plan["bob"])
    assert report.unused == [] and len(report.denied) == 3
    assert "attempted and denied (3):\n  list nodes (cluster-wide)\n    " in report.message()
    assert "code=403" in report.message()


def test_manifests_that_are_not_rbac_or_bind_someone_else_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "roles.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(RbacError, match=r"^.*roles.yaml document 1 is not an RBAC object \(kind 'ConfigMap'"):
        load_rbac([bad])
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "rb", "namespace": "ns"}, "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "User", "name": "mallory"}]}  # fmt: skip
    with pytest.raises(RbacError, match=r"^manifest 1: RoleBinding 'rb' binds User mallory, not bob$"):
        roles_as_grants([binding], "bob")


# -- the command --------------------------------------------------------------------------------------------------


def test_the_command_prints_apply_ready_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = DATA / "liggitt-audit2rbac-demo-2017-v1beta1.jsonl"
    assert main(["rbac", str(log), "--user", "bob", "--user", "system:serviceaccount:ns1:sa1"]) == 0
    out = capsys.readouterr().out
    docs = list(yaml.safe_load_all(out))
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {
        ("Role", "kind-audit:bob"),
        ("ClusterRole", "kind-audit:system:serviceaccount:ns1:sa1"),
    }
    assert out.startswith("# no live cluster: assumed Kubernetes' default bindings")
    assert main(["rbac", str(log), "--user", "nobody"]) == 2
    assert capsys.readouterr().err.startswith("error: no request by nobody in these events; requests were made by: ")
    notrbac = tmp_path / "b.yaml"
    notrbac.write_text("kind: Pod\napiVersion: v1\nmetadata: {name: p}\n")
    assert main(["rbac", str(log), "--user", "bob", "--bindings", str(notrbac)]) == 2
    assert "b.yaml document 1 is not an RBAC object" in capsys.readouterr().err


def test_the_command_reads_gzip_and_says_one_line_for_a_cut_off_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    whole = gzip.compress((DATA / "liggitt-audit2rbac-demo-head-v1-relabelled.jsonl").read_bytes())
    (tmp_path / "log.gz").write_bytes(whole)
    assert main(["rbac", str(tmp_path / "log.gz"), "--user", "bob"]) == 0
    assert "kind: Role" in capsys.readouterr().out
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    assert main(["rbac", str(tmp_path / "cut.gz"), "--user", "bob"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read audit events from ") and err.count("\n") == 1
