"""Failure messages of the asserts, pinned line by line, over a real recorded log (no cluster needed).
They are built by the plugin, so --assert=plain gives the same text."""

from __future__ import annotations

from pathlib import Path

import pytest

LOG = Path(__file__).parents[1] / "data" / "audit-logs" / "falcosecurity-falco-k8s_audit-trace-files.jsonl"

CONFTEST = f"""
import pytest
from pytest_kind_audit import AuditLog, FileSource
from pytest_kind_audit.asserts import reset_current_window, set_current_window

@pytest.fixture(autouse=True)
def recorded_window(pytestconfig):
    window = AuditLog(FileSource({str(LOG)!r})).session(verbosity=pytestconfig.option.verbose)
    token = set_current_window(window)
    yield
    reset_current_window(token)
"""

TESTS = """
import re
import pytest
from pytest_kind_audit import assert_audited, assert_not_audited

def test_missing():
    assert_audited(verb="create", resource="namespaces", name="demo", timeout=0)

def test_present():
    assert_not_audited(verb="create", resource="namespaces")

def test_count():
    assert_audited(verb="create", resource="configmaps", count=1, timeout=0)

def test_found():
    events = assert_audited(verb="create", resource="configmaps", count=8, timeout=0)
    assert {e.name for e in events} == {"my-config"}

def test_unknown_filter():
    with pytest.raises(TypeError, match="unknown audit filter 'resources'; valid filters: verb, resource"):
        assert_audited(resources="pods")
"""

MISSING = [
    "E       AssertionError: expected at least 1 audit event matching the query, found 0",
    "E         query:    verb='create' resource='namespaces' name='demo' stage='ResponseComplete'",
    "E         searched: 51 events in the whole session, waited 0.0s",
    "E         closest events (5 shown, ranked by number of differing fields):",
    "E           1. 13:58:49.736  create  namespaces  foo  user=system:anonymous  code=201",
    "E                differs: name: 'foo' is not 'demo'",
    "E           2. 13:52:41.558  create  namespaces  foo  user=minikube-user  code=201",
    "E                differs: name: 'foo' is not 'demo'",
    "E           3. 13:58:49.736  create  namespaces  foo  user=some-user  code=201",
    "E                differs: name: 'foo' is not 'demo'",
    "E           4. 14:26:34.242  create  clusterrolebindings  some-reader-binding  user=minikube-user  code=201",
    "E                differs: resource: 'clusterrolebindings' is not 'namespaces'; name: 'some-reader-binding' is not 'demo'",
    "E           5. 14:35:50.627  create  clusterroles  some-reader  user=minikube-user  code=201",
    "E                differs: resource: 'clusterroles' is not 'namespaces'; name: 'some-reader' is not 'demo'",
    "E         (use -v to list all 51 non-matching events)",
]
PRESENT = [
    "E       AssertionError: expected no audit event matching the query, found 3",
    "E         query:    verb='create' resource='namespaces' stage='ResponseComplete'",
    "E         searched: 51 events in the whole session, watched 0.0s",
    "E         matching events:",
    "E           1. 13:58:49.736  create  namespaces  foo  user=system:anonymous  code=201",
    "E           2. 13:52:41.558  create  namespaces  foo  user=minikube-user  code=201",
    "E           3. 13:58:49.736  create  namespaces  foo  user=some-user  code=201",
]
COUNT = [
    "E       AssertionError: expected exactly 1 audit event matching the query, found 8",
    "E         query:    verb='create' resource='configmaps' stage='ResponseComplete'",
    "E         searched: 51 events in the whole session, waited 0.0s",
    "E         matching events:",
    "E           1. 13:13:03.544  create  configmaps  default/my-config  user=minikube-user  code=201",
    "E           5. 09:51:53.350  create  configmaps  default/my-config  user=minikube-user  code=201",
    "E         (use -v to list all 8)",
]


@pytest.fixture
def run(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    return pytester


@pytest.mark.parametrize("assert_mode", ["rewrite", "plain"])
def test_failure_messages_line_by_line(run: pytest.Pytester, assert_mode: str) -> None:
    result = run.runpytest(f"--assert={assert_mode}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.re_match_lines([r"^>\s+assert_audited\(verb=\"create\", resource=\"namespaces\", name=\"demo\""])
    result.stdout.fnmatch_lines(MISSING, consecutive=True)
    result.stdout.fnmatch_lines(PRESENT, consecutive=True)
    result.stdout.fnmatch_lines(COUNT[:5])
    result.stdout.fnmatch_lines(COUNT[5:], consecutive=True)
    # Helper frames are hidden: the traceback points at the test line only.
    result.stdout.no_fnmatch_line("*asserts.py*")
    result.stdout.no_fnmatch_line("*log.py*")


def test_verbose_lists_every_non_matching_event(run: pytest.Pytester) -> None:
    result = run.runpytest("-v", "-k", "missing")
    result.stdout.fnmatch_lines(["E         closest events (51 shown, ranked by number of differing fields):"])
    result.stdout.no_fnmatch_line("*use -v to list*")


def test_bare_assert_outside_a_cluster_test_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("from pytest_kind_audit import assert_audited\ndef test_x():\n    assert_audited(verb='get')\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E   *NoAuditWindow: assert_audited() without a target searches the current test's events*"]
    )


POLICY_CONFTEST = f"""
import pytest
from pytest_kind_audit import AuditLog, AuditPolicy, FileSource
from pytest_kind_audit.asserts import reset_current_window, set_current_window

@pytest.fixture(autouse=True)
def recorded_window():
    policy = AuditPolicy(rules=[
        {{"level": "None", "resources": [{{"group": "", "resources": ["secrets"]}}]}},
        {{"level": "Metadata", "omitStages": ["RequestReceived"], "verbs": ["watch"]}},
        {{"level": "Metadata"}},
    ])
    log = AuditLog(FileSource({str(LOG)!r}), policy=policy, identity=("minikube-user", ("system:masters",)))
    token = set_current_window(log.session())
    yield
    reset_current_window(token)
"""

POLICY_TESTS = """
from pytest_kind_audit import assert_audited

def test_logged_at_none():
    assert_audited(verb="get", resource="secrets", namespace="default", name="token", timeout=0)

def test_stage_omitted():
    assert_audited(verb="watch", resource="pods", stage="RequestReceived", timeout=0)

def test_level_too_low():
    assert_audited(verb="create", resource="pods", level="RequestResponse", user="system:serviceaccount:x:y", timeout=0)

def test_no_hint_when_the_policy_is_not_the_reason():
    assert_audited(verb="create", resource="namespaces", name="demo", timeout=0)
"""


def test_failure_says_what_the_policy_does_with_the_request(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(POLICY_CONFTEST)
    pytester.makepyfile(POLICY_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "E         policy:   the policy logs a request like this (verb='get' resource='secrets' namespace='default'"
            " name='token' user='minikube-user') at None by rule 1 (1-based): "
            '{"level": "None", "resources": [{"group": "", "resources": ["secrets"]}]}',
            "E                   so the API server writes no event for it",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "E         policy:   the policy logs a request like this (verb='watch' resource='pods' user='minikube-user')"
            ' at Metadata by rule 2 (1-based): {"level": "Metadata", "omitStages": ["RequestReceived"], "verbs": ["watch"]}',
            "E                   and omits its RequestReceived stage (omitStages)",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "E         policy:   the policy logs a request like this (verb='create' resource='pods'"
            ' user=\'system:serviceaccount:x:y\') at Metadata by rule 3 (1-based): {"level": "Metadata"}',
            "E                   below the level='RequestResponse' the query asks for",
        ],
        consecutive=True,
    )
    assert result.stdout.str().count("E         policy:") == 3


SECTION_CONFTEST = f"""
import pytest
from pytest_kind_audit import AuditLog, FileSource
from pytest_kind_audit.asserts import reset_current_window, set_current_window
from pytest_kind_audit.state import WINDOW_KEY

@pytest.fixture(autouse=True)
def recorded_window(request):
    window = AuditLog(FileSource({str(LOG)!r})).session()
    request.node.stash[WINDOW_KEY] = window
    token = set_current_window(window)
    yield
    reset_current_window(token)
"""


def test_a_failed_test_gets_its_events_as_a_report_section(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SECTION_CONFTEST)
    pytester.makepyfile("def test_fails():\n    assert False\n\ndef test_passes():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- kind-audit events (50 requests, 51 events in this test) -*",
            "13:58:49.736  create  namespaces  foo  user=system:anonymous  code=201",
        ]
    )
    assert result.stdout.str().count("kind-audit events (") == 1, "only the failed test gets the section"
    verbose = pytester.runpytest("-vv")
    verbose.stdout.fnmatch_lines(
        [
            "*- kind-audit events (50 requests, 51 events in this test) -*",
            '{"kind": "Event", "apiVersion": "audit.k8s.io/v1*',
        ]
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"count": 1, "at_least": 1}, ValueError, "pass count= or at_least=, not both (got count=1, at_least=1)"),
        ({"count": -1}, ValueError, "count= must not be negative, got -1"),
        ({"at_least": -2}, ValueError, "at_least= must not be negative, got -2"),
        ({"count": 1.5}, TypeError, "count= must be a whole number, got 1.5"),
        ({"count": True}, TypeError, "count= must be a whole number, got True"),
    ],
)
def test_bad_counts_are_one_line_errors(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    from pytest_kind_audit import AuditLog, FileSource

    log = AuditLog(FileSource(LOG))
    with pytest.raises(error) as info:
        log.assert_audited(verb="create", timeout=0, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_an_inner_run_with_vv_leaves_no_state_behind(pytester: pytest.Pytester) -> None:
    """Verbosity travels with the window: an in-process pytest -vv changes nothing outside it."""
    from pytest_kind_audit import AuditLog, FileSource, NoAuditWindow
    from pytest_kind_audit.asserts import current_window

    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    inner = pytester.runpytest_inprocess("-vv", "-k", "missing")
    inner.assert_outcomes(failed=1)
    inner.stdout.no_fnmatch_line("*use -v to list*")
    with pytest.raises(NoAuditWindow):
        current_window()  # the inner run's window is gone with it
    with pytest.raises(AssertionError) as info:
        AuditLog(FileSource(LOG)).session().assert_audited(verb="create", name="demo", timeout=0)
    assert "  (use -v to list all 51 non-matching events)" in str(info.value).splitlines()
