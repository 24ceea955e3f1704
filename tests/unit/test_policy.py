from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kind_audit import LEVELS, AuditPolicy, PolicyError
from pytest_kind_audit.policy import unknown_keys, validate


@pytest.mark.parametrize("level", LEVELS)
def test_for_level_ends_with_a_catch_all_at_that_level(level: str) -> None:
    policy = AuditPolicy.for_level(level)
    data = policy.to_dict()
    assert data["apiVersion"] == "audit.k8s.io/v1" and data["kind"] == "Policy"
    assert data["rules"][-1] == {"level": level}
    assert validate(data) == []
    assert yaml.safe_load(policy.to_yaml()) == data


def test_for_level_refuses_unknown_levels() -> None:
    with pytest.raises(PolicyError, match="unknown audit level 'Verbose'; valid levels: None, Metadata"):
        AuditPolicy.for_level("Verbose")


def test_write_creates_the_file(tmp_path: Path) -> None:
    path = AuditPolicy.for_level("Request").write(tmp_path / "sub" / "policy.yaml")
    assert path.is_absolute() and path.is_file()
    assert AuditPolicy.from_file(path).max_level == "Request"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("rules: [\n", "is not valid YAML (line 2)"),
        ("- a\n", "must be a mapping"),
        ("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: Metadata}]\n",
         "apiVersion must be audit.k8s.io/v1, got 'audit.k8s.io/v1beta1'"),
        ("apiVersion: audit.k8s.io/v1\nkind: AuditPolicy\nrules: [{level: Metadata}]\n", "kind must be Policy"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "has no rules"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\n", "has no rules"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Everything}]\n",
         "rule 1: unknown level 'Everything'; valid levels: None, Metadata, Request, RequestResponse"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{verbs: [get]}]\n", "rule 1: level is required"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Start]\nrules: [{level: None}]\n",
         "omitStages: unknown stage 'Start'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: ['/a*b']}]\n",
         "may only have '*' as its last character"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [/x], namespaces: [a]}]\n",
         "both regular resources and non-resource URLs"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{group: apps/v1}]}]\n",
         "group 'apps/v1' is not a valid API group"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{resourceNames: [a]}]}]\n",
         "resourceNames requires resources"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: {level: Metadata}\n",
         "rules must be a list of rules (`rules: [{level: Metadata}]`), got a mapping"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: Metadata\n",
         "rules must be a list of rules (`rules: [{level: Metadata}]`), got the string 'Metadata'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: RequestReceived\nrules: [{level: None}]\n",
         ": omitStages must be a list of stages (`omitStages: [RequestReceived]`), got the string 'RequestReceived'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}, {level: None, omitStages: {RequestReceived: true}}]\n",
         "rule 2: omitStages must be a list of stages (`omitStages: [RequestReceived]`), got a mapping"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [healthz]}]\n",
         "rule 1: nonResourceURLs: 'healthz' must be '*' or start with '/' (a path: '/healthz', not 'healthz')"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: ['']}]\n",
         "rule 1: nonResourceURLs: '' must be '*' or start with '/'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: /healthz}]\n",
         "rule 1: nonResourceURLs must be a list (`nonResourceURLs: [...]`), got the string '/healthz'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, users: bob}]\n",
         "rule 1: users must be a list (`users: [...]`), got the string 'bob'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{resources: pods}]}]\n",
         "rule 1: resources: resources must be a list (`resources: [...]`), got the string 'pods'"),
    ],
)  # fmt: skip
def test_invalid_policies_are_refused_like_the_api_server_would(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError) as exc:
        AuditPolicy.from_file(path)
    assert message in str(exc.value)
    assert str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_directory_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        AuditPolicy.from_file(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="is a directory"):
        AuditPolicy.from_file(tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x: 1\n")
    with pytest.raises(PolicyError, match="cannot be read: Not a directory"):
        AuditPolicy.from_file(a_file / "policy.yaml")


def test_a_misspelt_key_is_reported_as_unknown() -> None:
    data = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "rules": [{"level": "None", "namespace": ["kube-system"], "resources": [{"resource": ["pods"]}]}]}  # fmt: skip
    assert validate(data) == []
    assert unknown_keys(data) == ["rules[1].namespace", "rules[1].resources.resource"]


def wildcard_policy(group: str = "*") -> dict[str, Any]:
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "None", "users": ["system:kube-proxy"]},
                      {"level": "Metadata", "resources": [{"group": group, "resources": ["*/status"]}]}]}  # fmt: skip


@pytest.mark.parametrize(
    ("version", "shown"), [((1, 35, 0), "v1.35.0"), ((1, 34, 4), "v1.34.4"), ((1, 23, 17), "v1.23.17")]
)
def test_group_wildcard_is_refused_for_kubernetes_before_1_36(version: tuple[int, int, int], shown: str) -> None:
    policy = AuditPolicy.from_dict(wildcard_policy(), source="policy.yaml")
    with pytest.raises(PolicyError) as exc:
        policy.for_kubernetes(version)
    assert str(exc.value) == (
        "audit policy policy.yaml: rule 2: resources: group '*' matches every API group only from Kubernetes 1.36; "
        f'{shown} refuses it (list each group in its own resources entry, "" for the core group)'
    )
    assert validate(wildcard_policy(), kubernetes_version=version) == [str(exc.value).split(": ", 1)[1]]


@pytest.mark.parametrize("version", [(1, 36, 0), (1, 36, 3), (1, 37, 0), (2, 0, 0)], ids=str)
def test_group_wildcard_is_accepted_from_1_36_and_bound_to_the_version(version: tuple[int, int, int]) -> None:
    policy = AuditPolicy.from_dict(wildcard_policy(), source="policy.yaml")
    bound = policy.for_kubernetes(version)
    assert bound.kubernetes_version == version and policy.kubernetes_version is None
    assert (bound.rules, bound.omit_stages, bound.source) == (policy.rules, policy.omit_stages, policy.source)
    assert bound.to_yaml() == policy.to_yaml()
    assert "kubernetes" not in bound.to_yaml().lower()
    assert validate(wildcard_policy(), kubernetes_version=version) == []


def test_without_a_version_group_wildcard_is_accepted_and_recorded() -> None:
    policy = AuditPolicy.from_dict(wildcard_policy())
    assert policy.kubernetes_version is None
    assert policy.min_kubernetes_version == (1, 36, 0)
    assert AuditPolicy.from_dict(wildcard_policy("apps")).min_kubernetes_version is None
    assert AuditPolicy.for_level("Metadata").min_kubernetes_version is None


def test_a_policy_without_group_wildcard_binds_to_any_version() -> None:
    for policy in (AuditPolicy.for_level("RequestResponse"), AuditPolicy.from_dict(wildcard_policy("apps"))):
        assert policy.for_kubernetes((1, 23, 0)).kubernetes_version == (1, 23, 0)
        assert policy.for_kubernetes((1, 35, 7)).to_yaml() == policy.to_yaml()


def test_binding_also_checks_a_policy_built_without_validation() -> None:
    policy = AuditPolicy(rules=[{"level": "Verbose"}], source="my fixture")
    with pytest.raises(
        PolicyError, match=r"^audit policy my fixture: rule 1: unknown level 'Verbose'; valid levels: None,"
    ):
        policy.for_kubernetes((1, 36, 0))


def test_binding_wants_a_version_tuple() -> None:
    with pytest.raises(
        TypeError, match=r"^Kubernetes version must be a \(major, minor, patch\) tuple of ints, got '1\.36\.0'$"
    ):
        AuditPolicy.for_level("Metadata").for_kubernetes("1.36.0")  # type: ignore[arg-type]
