"""``python -m pytest_kind_audit rbac LOG --user U``: least-privilege RBAC from any audit log, outside pytest."""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

from .events import AuditEvent, parse_text
from .exceptions import KindAuditError
from .leastprivilege import derive_rbac
from .rbac import load_rbac


def _read_events(paths: Sequence[str]) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for name in paths:
        path = Path(name)
        try:
            data = sys.stdin.buffer.read() if name == "-" else path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            events += parse_text(data.decode("utf-8"))
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise KindAuditError(f"cannot read audit events from {name}: {exc}") from None
    return events


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_kind_audit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rbac = commands.add_parser(
        "rbac",
        help="the smallest Roles/ClusterRoles allowing what a user did",
        description="Print the smallest Roles and ClusterRoles (with bindings) that allow exactly the requests "
        "each --user made and the authorizer allowed, as YAML for kubectl apply. Denied requests are listed in "
        "comments, never granted.",
    )
    rbac.add_argument(
        "logs", nargs="+", metavar="LOG", help="audit log files (JSON lines, an EventList, .gz; - for stdin)"
    )
    rbac.add_argument(
        "--user", action="append", required=True, metavar="U",
        help="a user name as the log has it, e.g. system:serviceaccount:NS:NAME (repeat for several)",
    )  # fmt: skip
    rbac.add_argument(
        "--bindings", action="append", default=[], metavar="FILE",
        help="the cluster's RBAC (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml): "
        "what the users' groups are granted there is left out; without it Kubernetes' defaults are assumed",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        existing = load_rbac(args.bindings) if args.bindings else None
        plan = derive_rbac(_read_events(args.logs), args.user, existing=existing)
    except KindAuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(plan.to_yaml())
        sys.stdout.flush()
    except BrokenPipeError:  # piped into head: the reader has what it wanted
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
