"""Shared by the e2e tests that start whole pytest runs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_kind_audit.deletion import delete_cluster as plugin_delete_cluster


def node_containers(cluster: str) -> list[str]:
    """The Docker containers of a kind cluster (any state)."""
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=io.x-k8s.kind.cluster={cluster}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


def delete_cluster(name: str) -> None:
    """Clean-up of a test's own cluster, whatever state the test left it in (the plugin's own deletion:
    an explicit kubeconfig, so ~/.kube/config is never edited; thawed and retried if stuck)."""
    deletion = plugin_delete_cluster("kind", name)
    assert deletion.deleted, f"clean-up of {name}: {deletion.describe()}"


class foreign_cluster:
    """A stand-in for someone else's kind cluster: a container with kind's labels and no plugin records.
    Enough for the reaper, which must leave it alone."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> str:
        image = os.environ.get("PYTEST_KIND_AUDIT_IMAGE") or "kind-audit-ci/base:bookworm-1"
        subprocess.run(["docker", "run", "-d", "--name", f"{self.name}-control-plane", "--entrypoint", "sleep",
                        "--label", f"io.x-k8s.kind.cluster={self.name}", "--label", "io.x-k8s.kind.role=control-plane",
                        image, "600"], check=True, capture_output=True)  # fmt: skip
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["docker", "rm", "-f", f"{self.name}-control-plane"], capture_output=True, check=False)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium driver for Debian's headless Chromium (ci/ensure-chromium.sh), quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()
