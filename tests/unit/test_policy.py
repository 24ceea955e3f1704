from __future__ import annotations

from pathlib import Path

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
    ],
)  # fmt: skip
def test_invalid_policies_are_refused_like_the_api_server_would(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError) as exc:
        AuditPolicy.from_file(path)
    assert message in str(exc.value)
    assert str(path) in str(exc.value)


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
