"""The pytest side of the run's reports and artifacts: a failed test's requests in its failure, each test's
requests and timeline in pytest-html's extras and in JUnit XML's properties, and for --kind-audit-log-dir
and --kind-audit-html, each test's events recorded where the run's owner can find them (every xdist worker
writes its own file); the owner writes the files at the end of the run, before the cluster is deleted."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest

from .asserts import FailedQuery, failed_query
from .events import parse_text
from .folding import section
from .hub import ClusterHub
from .log import AuditWindow
from .nodes import DockerLogSource, control_plane, docker_client
from .options import Settings
from .report import build_html, counts, extra_html, redact_secrets, save_log, shown_test
from .state import HUB_KEY, OUTCOME_KEY, SETTINGS_KEY

#: The failed assert that failed the test (from the phase that failed), for the teardown's reports.
FAILED_QUERY_KEY = pytest.StashKey[FailedQuery]()
JUNIT_PROPERTY = "kind-audit events"


def report_test(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, window: AuditWindow) -> None:
    """Every phase of a test that has an audit window: a failed phase gets the test's requests as a section
    of its failure (the terminal, JUnit's failure text and pytest-html's log all show it); the teardown
    hands the whole test to --kind-audit-html, pytest-html's extras and JUnit's properties."""
    config = item.config
    if report.when != "teardown":
        if report.when == "call" or report.failed:
            item.stash[OUTCOME_KEY] = report.outcome
        found = failed_query(call.excinfo.value) if call.excinfo is not None else None
        if found is not None and FAILED_QUERY_KEY not in item.stash:
            item.stash[FAILED_QUERY_KEY] = found
    html_report = config.stash[SETTINGS_KEY].html is not None
    pytest_html = config.pluginmanager.hasplugin("html") and bool(getattr(config.option, "htmlpath", None))
    junit = bool(getattr(config.option, "xmlpath", None))
    failed = item.stash.get(OUTCOME_KEY, report.outcome) == "failed" or report.failed
    wanted = report.failed or (report.when == "teardown" and (html_report or pytest_html or (junit and failed)))
    if not wanted:
        return
    try:
        events = window.all()
    except Exception as exc:  # a dead cluster must not hide the test's own failure
        if report.failed:
            report.sections.append(("kind-audit events", f"could not read the audit log: {exc}"))
        return
    own = window.identity[0] if window.identity else None
    found = item.stash.get(FAILED_QUERY_KEY, None)
    marked, query = (found.audit_ids, found.query) if found else ((), "")
    if report.failed:
        verbosity = int(config.option.verbose)
        # -vv shows raw events; the failure text reaches JUnit XML and pytest-html: Secret data as the report has it
        redact = None if config.stash[SETTINGS_KEY].html_secrets else redact_secrets
        title, text = section(events, own, verbosity=verbosity, marked=marked, query=query, redact=redact)
        # A section of the traceback's repr is part of the failure text, which JUnit XML keeps (report sections
        # never reach it); a failure without a traceback (pytest.fail(pytrace=False)) gets a report section.
        addsection = getattr(report.longrepr, "addsection", None)
        if callable(addsection):
            addsection(title, text)
        else:
            report.sections.append((title, text))
    if report.when != "teardown":
        return
    record = {"nodeid": item.nodeid, "outcome": item.stash.get(OUTCOME_KEY, report.outcome), "identity": own,
              "failure": dataclasses.asdict(found) if found else None,
              "events": [e.raw for e in events]}  # fmt: skip
    if html_report:
        _append_record(item, record)
    if pytest_html:
        _add_pytest_html_extra(report, record)
    if junit and failed:
        report.user_properties.append(
            (JUNIT_PROPERTY, section(events, own, verbosity=1, marked=marked, query=query)[1])
        )


def _append_record(item: pytest.Item, record: dict[str, Any]) -> None:
    """The test's record for --kind-audit-html, in this process's file (every xdist worker writes its own)."""
    hub: ClusterHub = item.config.stash[HUB_KEY]
    directory = hub.state_dir / "html"
    directory.mkdir(exist_ok=True)
    with open(directory / f"{os.getpid()}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _add_pytest_html_extra(report: pytest.TestReport, record: dict[str, Any]) -> None:
    """The test's timeline and requests in its pytest-html row. pytest-html inserts an html extra as markup,
    where scripts never run: extra_html is static and escapes every string."""
    from pytest_html import extras  # type: ignore[import-untyped]  # only here when the plugin is active

    shown = shown_test(record, show_secrets=False)
    cast(Any, report).extras = [*getattr(report, "extras", []), extras.html(extra_html(shown))]


def write_artifacts(hub: ClusterHub, cluster_name: str, settings: Settings) -> list[str]:
    """Write the log copy and the HTML report; return the terminal summary lines."""
    lines: list[str] = []
    if settings.log_dir is not None:
        try:
            container = control_plane(docker_client(), cluster_name)
            if container is None:
                raise LookupError(f"cluster {cluster_name} has no control-plane container")
            source = DockerLogSource(container)
            try:
                data = source.read_new()  # rotated files first, then the live one
            finally:
                source.close()
        except Exception as exc:  # the run's result matters more than its artifact
            lines.append(f"kind-audit: could not save the audit log: {exc}")
        else:
            path = save_log(data, settings.log_dir / f"{cluster_name}-audit.log")
            events = parse_text(data.decode(errors="replace"))
            lines.append(f"kind-audit: saved {len(events)} audit events to {path} (mode 0600)")
            lines += counts(events)
    if settings.html is not None:
        try:
            lines.append(_write_html(hub, cluster_name, settings, Path(settings.html)))
        except Exception as exc:  # the run's result, and the cluster's deletion, matter more than a report
            lines.append(f"kind-audit: could not write the HTML report: {exc}")
    return lines


def _write_html(hub: ClusterHub, cluster_name: str, settings: Settings, path: Path) -> str:
    tests: list[dict[str, Any]] = []
    torn = 0
    for file in sorted((hub.state_dir / "html").glob("*.jsonl")):
        for line in file.read_text(errors="replace").splitlines():
            try:
                if line:
                    tests.append(json.loads(line))
            except ValueError:  # a worker killed while writing its last record
                torn += 1
    tests.sort(key=lambda t: t["nodeid"])
    page = build_html(tests, title=f"kind-audit: audit events of {len(tests)} tests on {cluster_name}",
                      show_secrets=settings.html_secrets)  # fmt: skip
    save_log(page.encode(), path)
    secrets = "shown" if settings.html_secrets else "redacted"
    skipped = f", {torn} torn records skipped" if torn else ""
    return f"kind-audit: HTML report of {len(tests)} tests written to {path} (Secret data {secrets}{skipped})"
