"""_commands.run with work beside the command (while_waiting): kind create while the audit log is read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_kind_audit import _commands
from pytest_kind_audit.exceptions import CommandError


def test_output_and_input_are_kept_across_the_waits() -> None:
    calls: list[int] = []
    done = _commands.run(["sh", "-c", "sleep 0.3; cat; echo err >&2; exit 3"], input=b"from stdin", check=False,
                         while_waiting=lambda: calls.append(1), every=0.02)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (3, "from stdin", "err\n")
    assert len(calls) >= 3, "called while the command ran"


def test_a_failure_is_a_command_error_as_without_work_beside() -> None:
    with pytest.raises(CommandError) as info:
        _commands.run(["sh", "-c", "echo no >&2; exit 2"], while_waiting=lambda: None)
    assert (info.value.returncode, info.value.stderr) == (2, "no\n")


def test_an_exception_beside_kills_the_command_first(tmp_path: Path) -> None:
    started, survived = tmp_path / "started", tmp_path / "survived"

    def interrupt() -> None:
        if started.exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _commands.run(["sh", "-c", f"touch {started}; sleep 1; touch {survived}"], while_waiting=interrupt, every=0.02)
    # Not left to finish: a command only waited for would have written its file before run() returned.
    assert started.exists() and not survived.exists()


def test_a_timeout_kills_the_command_and_says_so() -> None:
    with pytest.raises(CommandError, match=r"timed out after 0\.3s"):
        _commands.run(["sleep", "60"], timeout=0.3, while_waiting=lambda: None, every=0.05)


@pytest.mark.parametrize("beside", [None, lambda: None], ids=["alone", "with-work-beside"])
def test_a_timeout_keeps_what_the_command_printed(beside: Callable[[], None] | None) -> None:
    # As kind create does: progress on stderr, then a step that never ends.
    script = "echo ' ✓ Preparing nodes'; echo ' • Starting control-plane' >&2; sleep 60"
    with pytest.raises(CommandError) as info:
        _commands.run(["sh", "-c", script], timeout=0.5, while_waiting=beside, every=0.05)
    assert info.value.stderr == " • Starting control-plane\ntimed out after 0.5s"
    assert str(info.value).endswith("• Starting control-plane\ntimed out after 0.5s")
    assert info.value.stdout == " ✓ Preparing nodes\n"
