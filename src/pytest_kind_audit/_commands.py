"""The one module that runs subprocesses (kind, kubectl). Argument lists only, never a shell."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from .exceptions import CommandError


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    while_waiting: Callable[[], None] | None = None,
    every: float = 0.5,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text; raise CommandError on a non-zero exit when ``check``.
    ``while_waiting`` is called about every ``every`` seconds until the command ends (work that can overlap
    it); if it raises, the command is killed first."""
    full_env = {**os.environ, **(env or {})}
    data = input.decode() if isinstance(input, bytes) else input
    try:
        if while_waiting is None:
            proc = subprocess.run(
                list(argv),
                input=data,
                env=full_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        else:
            proc = _run_beside(list(argv), data, full_env, timeout, while_waiting, every)
    except subprocess.TimeoutExpired as exc:
        # What it printed before it was stopped stays in the error: kind's progress shows the step it hung in.
        said = [_text(exc.stderr).rstrip("\n"), f"timed out after {timeout}s"]
        raise CommandError(list(argv), -1, _text(exc.stdout), "\n".join(filter(None, said))) from None
    except FileNotFoundError:
        raise CommandError(list(argv), 127, "", f"{argv[0]}: command not found") from None
    if check and proc.returncode != 0:
        raise CommandError(list(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


def _run_beside(
    argv: list[str],
    data: str | None,
    env: Mapping[str, str],
    timeout: float | None,
    while_waiting: Callable[[], None],
    every: float,
) -> subprocess.CompletedProcess[str]:
    """subprocess.run with ``while_waiting`` called between waits (communicate may be retried without
    losing output); the process is killed on a timeout or on any exception, as subprocess.run does."""
    deadline = None if timeout is None else time.monotonic() + timeout
    stdin = subprocess.PIPE if data is not None else subprocess.DEVNULL
    with subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          text=True) as process:  # fmt: skip
        try:
            while True:
                wait = every if deadline is None else min(every, max(0.0, deadline - time.monotonic()))
                try:
                    stdout, stderr = process.communicate(data, timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    data = None  # sent with the first call; a retry must not pass it again
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
                while_waiting()
        except BaseException:
            process.kill()
            process.wait()  # not communicate: a child it left may hold the pipes open
            raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def last_line(output: str, limit: int = 300) -> str:
    """The last non-blank line a command printed (its error, for most tools), cut to ``limit``; "" if none."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
