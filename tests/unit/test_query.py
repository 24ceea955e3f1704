from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_kind_audit import FILTERS, AuditEvents, AuditQuery, parse_text

LOGS = Path(__file__).parents[1] / "data" / "audit-logs"
EVENTS = AuditEvents(parse_text((LOGS / "liggitt-audit2rbac-demo-2017-v1beta1.jsonl").read_text()))
FALCO = AuditEvents(parse_text((LOGS / "falcosecurity-falco-k8s_audit-trace-files.jsonl").read_text()))


def test_string_filters_are_equality() -> None:
    found = EVENTS.filter(verb="list", code=403)
    assert len(found) == 11
    assert all(e.verb == "list" and e.code == 403 for e in found)


def test_iterable_means_any_of() -> None:
    assert len(EVENTS.filter(code=[403, 404])) == 101
    assert len(EVENTS.filter(verb={"create", "patch"})) == len(EVENTS.filter(verb="create")) + len(
        EVENTS.filter(verb="patch")
    )


def test_regex_is_a_full_match() -> None:
    assert len(FALCO.filter(user=re.compile(r"system:serviceaccount:.*"))) > 0
    assert len(FALCO.filter(user=re.compile(r"serviceaccount"))) == 0


def test_callable_is_a_predicate() -> None:
    assert len(EVENTS.filter(code=lambda c: c is not None and c >= 400)) == 101


def test_group_matches_any_of_the_users_groups() -> None:
    assert len(EVENTS.filter(group="system:masters")) == 437
    assert len(EVENTS.filter(group=["nope", "system:authenticated"])) == 437
    assert len(EVENTS.filter(group="nope")) == 0


def test_stage_defaults_to_response_complete_and_none_lifts_it() -> None:
    assert len(EVENTS.filter()) == 437
    assert len(EVENTS.filter(stage=None)) == 757
    assert len(EVENTS.filter(stage="RequestReceived")) == 320


def test_unknown_filter_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError) as exc:
        AuditQuery(verbs="get")
    assert str(exc.value) == "unknown audit filter 'verbs'; valid filters: " + ", ".join(FILTERS)


def test_bad_value_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="use a string or number"):
        AuditQuery(verb=3.5)


def test_differences_name_each_failing_field() -> None:
    event = EVENTS.filter(verb="list", code=403)[0]
    diffs = AuditQuery(verb="create", resource="pods", code=201).differences(event)
    assert [str(d) for d in diffs] == ["verb: 'list' is not 'create'", "code: 403 is not 201"]


def test_describe_is_readable() -> None:
    q = AuditQuery(verb=["get", "list"], user=re.compile("system:.*"))
    assert q.describe() == "verb=any of ['get', 'list'] user=re.compile('system:.*') stage='ResponseComplete'"


def test_one_and_first() -> None:
    assert EVENTS.filter(verb="nope").first() is None
    with pytest.raises(AssertionError, match="expected exactly one audit event, found 11"):
        EVENTS.filter(verb="list", code=403).one()


KIND_LOG = Path(__file__).parents[2] / "bench" / "data" / "kind-v1-metadata.jsonl.gz"


@pytest.fixture(scope="module")
def kind_events() -> AuditEvents:
    import gzip

    return AuditEvents(parse_text(gzip.open(KIND_LOG).read().decode()))


def test_resource_follows_the_audit_policys_matching(kind_events: AuditEvents) -> None:
    """A real kind session: "pods" never covers a subresource; "pods/binding", "*/binding", "pods/*" do."""
    every = kind_events.filter(stage=None)
    pods = {(e.resource, e.subresource) for e in every.filter(resource="pods", stage=None)}
    assert pods == {("pods", "")}
    binding = every.filter(resource="pods/binding", stage=None)
    assert binding and {(e.resource, e.subresource) for e in binding} == {("pods", "binding")}
    assert every.filter(resource="*/binding", stage=None) == binding
    all_pods = every.filter(resource="pods/*", stage=None)
    assert {e.subresource for e in all_pods} >= {"", "status", "binding"}
    assert len(all_pods) == sum(1 for e in every if e.resource == "pods")
    assert len(every.filter(resource="*", stage=None)) == sum(1 for e in every if e.resource)
    # Any of: each name with the same meaning. With subresource=, resource names the resource alone.
    assert every.filter(resource=["pods/binding"], stage=None) == binding
    assert every.filter(resource="pods", subresource="binding", stage=None) == binding
    # A regex sees resource/subresource.
    assert every.filter(resource=re.compile(r"pods/(status|binding)"), stage=None) == every.filter(
        resource=["pods/status", "pods/binding"], stage=None
    )


def test_a_passing_negative_assert_says_which_subresource_requests_it_did_not_count(kind_events: AuditEvents) -> None:
    from pytest_kind_audit import KindAuditWarning
    from pytest_kind_audit.asserts import check_absent

    class Replay:
        def __init__(self) -> None:
            self.events = kind_events

        timeout, verbosity, policy, identity = 0.0, 0, None, None

        def __len__(self) -> int:
            return len(self.events)

        def all(self) -> AuditEvents:
            return self.events

        def refresh(self) -> list[object]:
            return []

        def describe(self) -> str:
            return "the recorded session"

    # The kubelet creates no ServiceAccount, but asks for tokens: a negative assert on "serviceaccounts"
    # passes, and says what it did not count.
    query = AuditQuery(verb="create", resource="serviceaccounts", user=re.compile("system:node:.*"))
    with pytest.warns(KindAuditWarning) as caught:
        check_absent(Replay(), query, timeout=0)  # type: ignore[arg-type]
    (warning,) = caught
    assert str(warning.message) == (
        "8 serviceaccounts/token requests were not counted; resource='serviceaccounts/*' includes them"
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_absent(Replay(), AuditQuery(verb="delete", resource="serviceaccounts/*"), timeout=0)  # type: ignore[arg-type]


def test_annotation_filters(kind_events: AuditEvents) -> None:
    allowed = kind_events.filter(annotations={"authorization.k8s.io/decision": "allow"})
    assert allowed and all(e.decision == "allow" for e in allowed)
    reasons = kind_events.filter(annotations={"authorization.k8s.io/reason": re.compile(r"RBAC: allowed by .*")})
    assert reasons and all(e.annotations["authorization.k8s.io/reason"].startswith("RBAC: allowed by") for e in reasons)
    present = kind_events.filter(annotations="pod-security.kubernetes.io/enforce-policy")
    assert present == kind_events.filter(annotations={"pod-security.kubernetes.io/enforce-policy": True})
    assert present and all("pod-security.kubernetes.io/enforce-policy" in e.annotations for e in present)
    # v1 Endpoints are deprecated since Kubernetes 1.33: the API server marks every request on them.
    deprecated = kind_events.filter(annotations={"k8s.io/deprecated": "true"}, stage=None)
    assert deprecated and {e.resource for e in deprecated} == {"endpoints"}
    assert len(deprecated) == 18
    with pytest.raises(TypeError, match="filter annotations=42: use a mapping of annotation keys to values"):
        AuditQuery(annotations=42)


def test_annotation_differences_show_only_the_keys_asked_about(kind_events: AuditEvents) -> None:
    query = AuditQuery(verb="create", annotations={"k8s.io/deprecated": "true"})
    event = kind_events.filter(verb="create")[0]
    (diff,) = query.differences(event)
    assert str(diff) == "annotations: {'k8s.io/deprecated': None} is not {'k8s.io/deprecated': 'true'}"
