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
