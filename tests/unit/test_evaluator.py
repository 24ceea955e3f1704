from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kind_audit import AuditPolicy

DATA = yaml.safe_load((Path(__file__).parents[1] / "data" / "upstream-checker-cases.yaml").read_text())
POLICY_STAGES = [[], ["RequestReceived", "ResponseStarted"]]


def policy(rule_names: list[str], omit_stages: list[str]) -> AuditPolicy:
    return AuditPolicy(rules=[DATA["rules"][n] for n in rule_names], omit_stages=omit_stages)


def request(name: str) -> dict[str, Any]:
    return dict(DATA["requests"][name])


@pytest.mark.parametrize("stages", POLICY_STAGES, ids=["no-policy-stages", "policy-stages"])
@pytest.mark.parametrize(("req", "level", "rules"), DATA["level_cases"], ids=str)
def test_upstream_level_cases(req: str, level: str, rules: list[str], stages: list[str]) -> None:
    decision = policy(rules, stages).level_for(**request(req))
    assert decision.level == level
    assert decision.omit_stages == frozenset(stages)


@pytest.mark.parametrize(("req", "level", "stages", "omitted", "rules"), DATA["stage_cases"], ids=str)
def test_upstream_stage_cases(req: str, level: str, stages: list[str], omitted: list[str], rules: list[str]) -> None:
    decision = policy(rules, stages).level_for(**request(req))
    assert decision.level == level
    assert decision.omit_stages == frozenset(omitted)


def test_case_count_matches_upstream() -> None:
    assert len(DATA["level_cases"]) == 45
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
