"""A --kind-audit-kind-binary that is not kind, or a kind too old for the node image's Kubernetes: one
line each, before any cluster is created (issue #8 item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

USES_CLUSTER = "def test_x(audited_cluster):\n    pass\n"


@pytest.fixture(autouse=True)
def _needs_docker(clean_env: None) -> None:
    """Docker is checked first; these runs need it reachable to get to the kind binary."""
    from pytest_kind_audit.exceptions import EnvironmentNotReady
    from pytest_kind_audit.nodes import docker_client

    try:
        docker_client()
    except EnvironmentNotReady as exc:
        pytest.skip(str(exc))


def script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def one_line_error(pytester: pytest.Pytester, *args: str) -> str:
    """Run with --kind-audit-require; the one error line (no traceback, nothing after it)."""
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("--kind-audit-require", *args)
    result.assert_outcomes(errors=1)
    result.stdout.no_fnmatch_line("*Traceback*")
    return error_block(result.outlines)


def error_block(outlines: list[str]) -> str:
    """The text under "ERROR at setup of test_x": exactly one line."""
    start = next(i for i, line in enumerate(outlines) if "ERROR at setup of test_x" in line) + 1
    end = next(i for i, line in enumerate(outlines) if "short test summary info" in line)
    assert end - start == 1, outlines[start:end]
    return outlines[start]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("exit 0", "`{b} version` printed nothing, not 'kind vX.Y.Z ...'"),
        ("echo 'hello 1.2.3'", "`{b} version` printed 'hello 1.2.3', not 'kind vX.Y.Z ...'"),
        ("echo 'Usage: frob [flags]'; echo more", "`{b} version` printed 'Usage: frob [flags]\\nmore', not 'kind vX.Y.Z ...'"),
    ],
)  # fmt: skip
def test_a_binary_that_is_not_kind_is_one_line(pytester: pytest.Pytester, body: str, said: str) -> None:
    binary = script(pytester.path / "not-kind", body)
    line = one_line_error(pytester, f"--kind-audit-kind-binary={binary}")
    assert line.endswith(
        f"kind-audit: {binary} is not kind: {said.format(b=binary)}; pass the kind CLI as --kind-audit-kind-binary"
    )


def test_bin_true_and_a_failing_binary_are_one_line(pytester: pytest.Pytester) -> None:
    line = one_line_error(pytester, "--kind-audit-kind-binary=/bin/true")
    assert line.endswith("kind-audit: /bin/true is not kind: `/bin/true version` printed nothing, not 'kind vX.Y.Z ...'; "
                         "pass the kind CLI as --kind-audit-kind-binary")  # fmt: skip
    failing = script(pytester.path / "broken-kind", "echo 'segfault at 0' >&2; exit 139")
    line = one_line_error(pytester, f"--kind-audit-kind-binary={failing}")
    assert line.endswith(f"kind-audit: {failing} is not a working kind: `{failing} version` failed (segfault at 0); "
                         "pass the kind CLI as --kind-audit-kind-binary")  # fmt: skip


def test_without_require_a_binary_that_is_not_kind_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("-rs", "--kind-audit-kind-binary=/bin/true")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * kind-audit: /bin/true is not kind: *"])


def test_a_kind_too_old_for_the_image_fails_before_pulling_it(pytester: pytest.Pytester) -> None:
    # Only `kind version` runs: the image is refused by its tag, before any pull or cluster.
    old_kind = script(pytester.path / "kind", "echo 'kind v0.30.0 go1.26.8 linux/amd64'")
    image = "kind-audit-ci/never-pulled:v1.37.2@sha256:" + "0" * 64
    for require in ((), ("--kind-audit-require",)):  # wrong, not missing: an error even without require
        pytester.makepyfile(USES_CLUSTER)
        result = pytester.runpytest(*require, f"--kind-audit-kind-binary={old_kind}", f"--kind-audit-image={image}")
        result.assert_outcomes(errors=1)
        assert error_block(result.outlines) == (
            f"kind-audit: node image {image} runs Kubernetes v1.37.2: kind v0.30.0 renders kubeadm v1beta3, "
            "which Kubernetes v1.37.2 refuses: use kind v0.32.0 or newer"
        )
