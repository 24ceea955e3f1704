"""The ecosystem's reports, with the real plugins, in whole pytest runs on a replayed window (the ConfigMap
steps of a recorded session on our own kind cluster, plus one request written to break markup): pytest-html
carries each test's timeline and requests as a static extra, JUnit XML a failed test's requests in its
properties and its failure text, and the terminal folds the other actors."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_kind_audit.folding import fold
from unit.test_folding import KUBELET, OWN, window

pytest_html = pytest.importorskip("pytest_html")

HOSTILE_USER = "<script>window.__pwned=1</script>"
HOSTILE = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "hostile-1",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/x/configmaps", "verb": "create",
    "user": {"username": HOSTILE_USER}, "responseStatus": {"metadata": {}, "code": 500},
    "objectRef": {"resource": "configmaps", "namespace": "<!--", "name": '<img src=x onerror="alert(1)">'},
    "requestReceivedTimestamp": "2026-11-29T03:21:41.000000Z", "stageTimestamp": "2026-11-29T03:21:41.001000Z",
}  # fmt: skip

CONFTEST = """
import pytest
from pytest_kind_audit import AuditLog, FileSource
from pytest_kind_audit.asserts import reset_current_window, set_current_window
from pytest_kind_audit.state import WINDOW_KEY

@pytest.fixture(autouse=True)
def recorded_window(request):
    log = AuditLog(FileSource("audit.log"), identity=({own!r}, ("system:masters",)))
    request.node.stash[WINDOW_KEY] = window = log.session()
    token = set_current_window(window)
    yield
    reset_current_window(token)
"""
TESTS = """
from pytest_kind_audit import assert_audited

def test_fails():
    assert_audited(verb="deletecollection", resource="configmaps", timeout=0)

def test_passes():
    assert_audited(verb="create", resource="configmaps", name="settings-0", timeout=0)
"""


@pytest.fixture
def run(pytester: pytest.Pytester, clean_env: None) -> pytest.RunResult:
    lines = [json.dumps(dict(e.raw)) for e in window()] + [json.dumps(HOSTILE)]
    (pytester.path / "audit.log").write_text("\n".join(lines) + "\n")
    pytester.makeconftest(CONFTEST.format(own=OWN))
    pytester.makepyfile(test_reports=TESTS)
    result = pytester.runpytest("--html=report.html", "--self-contained-html", "--junitxml=junit.xml",
                                "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(failed=1, passed=1)
    return result


def pytest_html_tests(page: str) -> dict[str, Any]:
    """The per-test data pytest-html's page renders from (its JSON blob)."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None, "no pytest-html data in the page"
    tests: dict[str, Any] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_pytest_html_rows_carry_a_static_escaped_timeline(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    tests = pytest_html_tests((pytester.path / "report.html").read_text())
    requests = fold(window())
    for test in ("test_reports.py::test_fails", "test_reports.py::test_passes"):
        (row,) = tests[test]
        (extra,) = [x for x in row["extras"] if x["format_type"] == "html"]
        content = extra["content"]
        assert "<script" not in content.lower(), "pytest-html inserts it as markup: no script, ever"
        assert "onerror=" not in content.replace("onerror=&quot;", ""), "attributes only from us"
        assert html.escape(HOSTILE_USER) in content and html.escape('<img src=x onerror="alert(1)">') in content
        assert f"{len(requests) + 1} requests ({len(window()) + 1} events) in this test" in content
        assert content.count("<rect ") == len(requests) + 1, "a timeline mark per request"
        assert f"requests by {KUBELET}</summary>" in content, "other actors folded, opening on click"
    failed = tests["test_reports.py::test_fails"][0]["extras"][0]["content"]
    assert "assert_audited failed: verb=&#x27;deletecollection&#x27; resource=&#x27;configmaps&#x27;" in failed
    assert failed.count("<circle ") == 5, "the five closest events the failure names, ringed"
    passed = tests["test_reports.py::test_passes"][0]["extras"][0]["content"]
    assert "failed:" not in passed and "<circle " not in passed


def test_junit_xml_holds_the_failed_tests_requests(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    failed, passed = cases["test_fails"], cases["test_passes"]
    own = [r for r in fold(window()) if r.actor == OWN]
    (prop,) = failed.findall("properties/property")
    assert prop.get("name") == "kind-audit events"
    value = prop.get("value") or ""
    assert [line for line in value.splitlines() if "user=kubernetes-admin" in line] == [
        r.summary() + (f"  <- {n}" if (n := _rank(value, r.summary())) else "") for r in own
    ]
    assert (
        f"requests by {KUBELET}" in value
        and f"    {next(r for r in fold(window()) if r.actor == KUBELET).summary()}" in value
    )
    assert HOSTILE_USER in value, "XML-escaped by the writer, read back as the text it was"
    failure = failed.find("failure")
    assert failure is not None and failure.text is not None
    assert "kind-audit events (" in failure.text, "the failure text, which every JUnit reader shows"
    assert own[0].summary() in failure.text
    assert passed.find("properties") is None and passed.find("failure") is None


def _rank(text: str, summary: str) -> int | None:
    found = re.search(re.escape(summary) + r"  <- (\d+)", text)
    return int(found.group(1)) if found else None


def test_terminal_section_folds_other_actors_and_lists_them_with_v(
    run: pytest.RunResult, pytester: pytest.Pytester
) -> None:
    requests = fold(window())
    kubelet = sum(1 for r in requests if r.actor == KUBELET)
    run.stdout.fnmatch_lines([
        f"*- kind-audit events ({len(requests) + 1} requests, {len(window()) + 1} events in this test) -*",
        "<- n: the events the failed assert names, for verb='deletecollection' resource='configmaps'*",
    ])  # fmt: skip
    run.stdout.fnmatch_lines([f"{kubelet} requests by {KUBELET}*", f"1 request by {HOSTILE_USER}, 1 with 4xx/5xx"])
    assert "user=system:node:" not in run.stdout.str()
    verbose = pytester.runpytest("-v", "-p", "no:cacheprovider")
    verbose.stdout.fnmatch_lines([f"{kubelet} requests by {KUBELET}*", "    *user=system:node:*"])
