from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kind_audit import AuditPolicy, PolicyError
from pytest_kind_audit.evaluator import RequestAttributes, evaluate, explain

DATA = yaml.safe_load((Path(__file__).parents[1] / "data" / "upstream-checker-cases.yaml").read_text())
POLICY_STAGES = [[], ["RequestReceived", "ResponseStarted"]]
# Unknown, and the Kubernetes versions whose API server takes every upstream case (group "*" needs 1.36).
VERSIONS = [None, (1, 36, 0), (1, 37, 2)]


def policy(rule_names: list[str], omit_stages: list[str], version: tuple[int, int, int] | None = None) -> AuditPolicy:
    p = AuditPolicy(rules=[DATA["rules"][n] for n in rule_names], omit_stages=omit_stages)
    return p if version is None else p.for_kubernetes(version)


def request(name: str) -> dict[str, Any]:
    return dict(DATA["requests"][name])


@pytest.mark.parametrize("version", VERSIONS, ids=str)
@pytest.mark.parametrize("stages", POLICY_STAGES, ids=["no-policy-stages", "policy-stages"])
@pytest.mark.parametrize(("req", "level", "rules"), DATA["level_cases"], ids=str)
def test_upstream_level_cases(
    req: str, level: str, rules: list[str], stages: list[str], version: tuple[int, int, int] | None
) -> None:
    decision = policy(rules, stages, version).level_for(**request(req))
    assert decision.level == level
    assert decision.omit_stages == frozenset(stages)


@pytest.mark.parametrize(("req", "level", "stages", "omitted", "rules"), DATA["stage_cases"], ids=str)
def test_upstream_stage_cases(req: str, level: str, stages: list[str], omitted: list[str], rules: list[str]) -> None:
    decision = policy(rules, stages).level_for(**request(req))
    assert decision.level == level
    assert decision.omit_stages == frozenset(omitted)


def test_case_count_matches_upstream() -> None:
    # k8s.io/apiserver v0.36 added one level case (group "*"); v0.35 had 45.
    assert len(DATA["level_cases"]) == 46
    assert len(DATA["stage_cases"]) == 12


def test_the_deciding_rule_is_reported() -> None:
    p = policy(["getMetrics", "getPods", "default"], [])
    decision = p.level_for(**request("namespaced"))
    assert decision.rule_index == 1
    assert decision.describe().startswith("RequestResponse by rule 2 (1-based): {")
    miss = policy(["create"], []).level_for(**request("namespaced"))
    assert miss.rule_index is None and miss.level == "None"
    assert miss.describe() == "None (no rule matches: the default is None)"


def test_explain_names_the_first_failing_predicate() -> None:
    p = policy(["tims", "default"], [])
    assert p.explain(**request("Unauthorized")) == [
        "rule 1 skipped: users ['tim@k8s.io'] does not include None",
        "rule 2 matches: level Metadata",
    ]
    p = AuditPolicy(rules=[{"level": "None", "resources": [{"resources": ["deployments"]}]}, {"level": "Metadata"}])
    assert p.explain(verb="get", user="u", resource="deployments", api_group="apps", name="web") == [
        "rule 1 skipped: resources are in API groups [''], the request is in 'apps'",
        "rule 2 matches: level Metadata",
    ]


@pytest.mark.parametrize(
    ("rule", "attrs", "matches"),
    [
        ({"resources": [{"resources": ["pods/*"]}]}, {"resource": "pods"}, True),  # the resource itself too
        ({"resources": [{"resources": ["*/scale"]}]}, {"resource": "deployments"}, False),
        ({"resources": [{"group": "apps", "resources": ["*/scale"]}]},
         {"resource": "deployments", "subresource": "scale", "api_group": "apps"}, True),
        ({"resources": [{"resources": ["pods"], "resourceNames": ["web"]}]}, {"resource": "pods"}, False),  # create
        ({"namespaces": [""]}, {"resource": "pods"}, True),  # all-namespace list
        ({"namespaces": [""]}, {"resource": "namespaces", "namespace": "foo", "name": "foo"}, False),
        ({"namespaces": ["kube-system"]}, {"path": "/healthz", "is_resource": False}, False),
        ({"nonResourceURLs": ["/healthz*"]}, {"path": "/healthzfoo", "is_resource": False}, True),
        ({"nonResourceURLs": ["/healthz"]}, {"path": "/healthz/", "is_resource": False}, False),
        ({"users": ["bob"]}, {"user": "admin", "resource": "pods"}, False),  # --as=bob is not bob
        ({"resources": [{"group": "*", "resources": ["*"]}]}, {"resource": "widgets", "api_group": "x.io"}, True),
    ],
)  # fmt: skip
def test_matching_traps(rule: dict[str, Any], attrs: dict[str, Any], matches: bool) -> None:
    p = AuditPolicy(rules=[{"level": "Request", **rule}])
    base = {"verb": "list", "user": "admin", **attrs}
    assert (p.level_for(**base).level == "Request") is matches


WILDCARD = {"level": "Request", "resources": [{"group": "*", "resources": ["deployments", "pods"]}]}
# kubectl scale deployment web -n shop, as the API server sees it: another group than the core one.
SCALE: dict[str, Any] = {"verb": "patch", "user": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"],
         "resource": "deployments", "subresource": "", "namespace": "shop", "name": "web", "api_group": "apps",
         "path": "/apis/apps/v1/namespaces/shop/deployments/web"}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS, ids=str)
@pytest.mark.parametrize(
    ("attrs", "level", "why"),
    [
        (SCALE, "Request", "rule 1 matches: level Request"),
        ({**SCALE, "resource": "pods", "api_group": "", "path": "/api/v1/namespaces/shop/pods/web"}, "Request",
         "rule 1 matches: level Request"),
        ({**SCALE, "resource": "jobs", "api_group": "batch", "path": "/apis/batch/v1/namespaces/shop/jobs/web"}, "None",
         "rule 1 skipped: resources [{'group': '*', 'resources': ['deployments', 'pods']}] do not cover 'jobs' named 'web'"),
        ({"verb": "get", "user": "kubernetes-admin", "path": "/version", "is_resource": False}, "None",
         "rule 1 skipped: it is a resource rule and this is a non-resource request"),
    ],
    ids=["apps", "core", "other-resource", "non-resource"],
)  # fmt: skip
def test_group_wildcard_matches_every_group_core_included_from_1_36(
    version: tuple[int, int, int] | None, attrs: dict[str, Any], level: str, why: str
) -> None:
    p = AuditPolicy(rules=[WILDCARD])
    bound = p if version is None else p.for_kubernetes(version)
    assert bound.level_for(**attrs).level == level
    assert bound.explain(**attrs) == [why] + (["no rule matches: level None"] if level == "None" else [])


@pytest.mark.parametrize("version", [(1, 35, 0), (1, 35, 7), (1, 34, 4), (1, 23, 0)], ids=str)
def test_group_wildcard_policy_cannot_be_bound_before_1_36(version: tuple[int, int, int]) -> None:
    with pytest.raises(
        PolicyError, match=r"rule 1: resources: group '\*' matches every API group only from Kubernetes 1\.36"
    ):
        AuditPolicy(rules=[WILDCARD]).for_kubernetes(version)


def test_before_1_36_the_evaluator_takes_group_star_literally() -> None:
    # Such a policy never gets past validation there; the checker then compared "*" as a group name.
    attrs = RequestAttributes(**{**SCALE, "groups": tuple(SCALE["groups"])})
    assert evaluate([WILDCARD], attrs, kubernetes_version=(1, 35, 0)).level == "None"
    assert explain([WILDCARD], attrs, kubernetes_version=(1, 35, 0))[0] == (
        "rule 1 skipped: resources are in API groups ['*'], the request is in 'apps'"
    )
    assert evaluate([WILDCARD], attrs, kubernetes_version=(1, 36, 0)).level == "Request"
    assert evaluate([WILDCARD], attrs).level == "Request"  # version unknown: the newest behaviour
    # A policy given its version directly (not through for_kubernetes) is evaluated as that version too.
    unchecked = AuditPolicy(rules=[WILDCARD], kubernetes_version=(1, 35, 0))
    assert unchecked.level_for(**SCALE).level == "None"
    assert (
        unchecked.explain(**SCALE)[0] == "rule 1 skipped: resources are in API groups ['*'], the request is in 'apps'"
    )
    assert AuditPolicy(rules=[WILDCARD], kubernetes_version=(1, 36, 0)).level_for(**SCALE).level == "Request"


def test_a_version_without_group_wildcards_binds_any_policy_and_matches_the_same() -> None:
    p = policy(["getClusterRoles", "getPods", "default"], [])
    bound = p.for_kubernetes((1, 35, 0))
    for name in DATA["requests"]:
        assert bound.level_for(**request(name)) == p.level_for(**request(name))
