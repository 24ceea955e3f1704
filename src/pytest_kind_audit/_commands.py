"""The one module that runs subprocesses (kind, kubectl). Argument lists only, never a shell."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from .exceptions import CommandError


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text; raise CommandError on a non-zero exit when ``check``."""
    full_env = {**os.environ, **(env or {})}
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(list(argv), -1, _text(exc.stdout), f"timed out after {timeout}s") from None
    except FileNotFoundError:
        raise CommandError(list(argv), 127, "", f"{argv[0]}: command not found") from None
    if check and proc.returncode != 0:
        raise CommandError(list(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def last_line(output: str, limit: int = 300) -> str:
    """The last non-blank line a command printed (its error, for most tools), cut to ``limit``; "" if none."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
