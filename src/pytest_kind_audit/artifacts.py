"""The pytest side of the run's artifacts (--kind-audit-log-dir, --kind-audit-html): each test's events are
recorded where the run's owner can find them (every xdist worker writes its own file), and the owner
writes the files at the end of the run, before the cluster is deleted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .events import parse_text
from .hub import ClusterHub
from .log import AuditWindow
from .nodes import DockerLogSource, control_plane, docker_client
from .options import Settings
from .report import build_html, counts, save_log
from .state import HUB_KEY, OUTCOME_KEY


def record_for_html(item: pytest.Item, report: pytest.TestReport, window: AuditWindow) -> None:
    """After a test's teardown, append its events to this process's record file."""
    if report.when != "teardown":
        if report.when == "call" or report.failed:
            item.stash[OUTCOME_KEY] = report.outcome
        return
    hub: ClusterHub = item.config.stash[HUB_KEY]
    directory = hub.state_dir / "html"
    directory.mkdir(exist_ok=True)
    record = {"nodeid": item.nodeid, "outcome": item.stash.get(OUTCOME_KEY, report.outcome),
              "events": [dict(e.raw) for e in window.all()]}  # fmt: skip
    with open(directory / f"{os.getpid()}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


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
        tests = []
        for file in sorted((hub.state_dir / "html").glob("*.jsonl")):
            tests += [json.loads(line) for line in file.read_text().splitlines() if line]
        tests.sort(key=lambda t: t["nodeid"])
        page = build_html(tests, title=f"kind-audit: audit events of {len(tests)} tests on {cluster_name}",
                          show_secrets=settings.html_secrets)  # fmt: skip
        save_log(page.encode(), Path(settings.html))
        secrets = "shown" if settings.html_secrets else "redacted"
        lines.append(
            f"kind-audit: HTML report of {len(tests)} tests written to {settings.html} (Secret data {secrets})"
        )
    return lines
