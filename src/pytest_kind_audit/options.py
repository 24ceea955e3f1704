"""Every option in one table: CLI flag, ini key, environment variable, default. Resolved once, validated,
with the source of each value (CLI over env over ini over default).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .exceptions import ConfigError, PolicyError
from .kindconfig import load_base
from .policy import LEVELS, AuditPolicy

__all__ = ["OPTIONS", "Settings", "add_options", "resolve"]

ENV_PREFIX = "PYTEST_KIND_AUDIT_"


@dataclass(frozen=True)
class Option:
    name: str  # settings attribute; flag --kind-audit-<name with dashes>, ini kind_audit_<name>
    help: str
    default: Any
    kind: str = "str"  # str | bool | float | path
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--kind-audit-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "kind_audit_" + self.name

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("level", f"Audit level of the built-in policy: {', '.join(LEVELS)} (default Metadata)", "Metadata",
           metavar="LEVEL"),
    Option("policy", "An audit.k8s.io/v1 Policy file to use instead of the built-in policy", None, "path", "FILE"),
    Option("kind_config", "A kind Cluster config file; the audit wiring is merged into it", None, "path", "FILE"),
    Option("cluster_name", "Name of the kind cluster (default: kind-audit-<random>)", None, metavar="NAME"),
    Option("image", "Node image for kind create cluster (default: kind's own)", None, metavar="IMAGE"),
    Option("kind_binary", "The kind executable (default: kind on PATH)", "kind", metavar="PATH"),
    Option("keep_cluster", "Keep the cluster after the run (its delete command is printed)", False, "bool"),
    Option("reuse_cluster", "Reuse a running cluster of that name made by this plugin if its audit "
           "configuration matches (else create and keep it); default name kind-audit", False, "bool"),
    Option("timeout", "Seconds assert_audited waits for events to be written (default 10)", 10.0, "float",
           "SECONDS"),
    Option("require", "A missing Docker, kind or node image is an error instead of a skip", False, "bool"),
    Option("log_dir", "Save the session's whole audit log to this directory (mode 0600) and summarize it",
           None, "path", "DIR"),
    Option("html", "Write a self-contained HTML report of each test's audit events to this file", None, "path",
           "FILE"),
    Option("html_secrets", "Show Secret data in the HTML report (redacted by default)", False, "bool"),
    Option("log_maxsize", "Rotate the audit log at this many MB (--audit-log-maxsize; default: the API "
           "server's own)", 0, "int", "MB"),
)  # fmt: skip

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    level: str
    policy: Path | None
    kind_config: Path | None
    cluster_name: str
    image: str
    kind_binary: str
    keep_cluster: bool
    reuse_cluster: bool
    timeout: float
    require: bool
    log_maxsize: int
    log_dir: Path | None
    html: Path | None
    html_secrets: bool
    sources: dict[str, str]
    audit_policy: AuditPolicy
    base_config: dict[str, Any]

    @property
    def apiserver_args(self) -> dict[str, str]:
        """Extra kube-apiserver flags the options ask for."""
        return {"audit-log-maxsize": str(self.log_maxsize)} if self.log_maxsize else {}

    def header(self, how: str = "created") -> str:
        policy = f"policy={self.policy}" if self.policy else f"level={self.level}"
        return (
            f"kind-audit: {policy}, cluster={self.cluster_name} ({how}), image={self.image or 'kind default'}, "
            f"kind={self.kind_binary}, keep={'yes' if self.keep_cluster else 'no'}, "
            f"reuse={'yes' if self.reuse_cluster else 'no'}, "
            f"require={'yes' if self.require else 'no'}, timeout={self.timeout:g}s"
        )


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("kind-audit", "real kind clusters with Kubernetes API auditing")
    for opt in OPTIONS:
        help_text = f"{opt.help}. ini: {opt.ini}, env: {opt.env}"
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_const", const=True, default=None, dest="kind_audit_" + opt.name,
                            help=help_text)  # fmt: skip
        else:
            group.addoption(opt.flag, action="store", default=None, metavar=opt.metavar,
                            dest="kind_audit_" + opt.name, help=help_text)  # fmt: skip
        # Every ini value is read as text and converted like the env var (pytest 7 has no float type,
        # and its string default for None is an empty list).
        parser.addini(opt.ini, opt.help, type="string", default="")


def _convert(opt: Option, raw: Any, source: str) -> Any:
    where = {"cli": opt.flag, "env": opt.env, "ini": opt.ini}.get(source, opt.name)
    if opt.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise pytest.UsageError(f"{where}: {raw!r} is not a boolean; use one of 1, true, yes, on, 0, false, no, off")
    if opt.kind == "int":
        try:
            number = int(str(raw))
        except ValueError:
            raise pytest.UsageError(f"{where}: {raw!r} is not a whole number, e.g. {where}=100") from None
        if number < 0:
            raise pytest.UsageError(f"{where}: {raw!r} must not be negative")
        return number
    if opt.kind == "float":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{where}: {raw!r} is not a number of seconds, e.g. {where}=10") from None
        if value < 0:
            raise pytest.UsageError(f"{where}: {raw!r} must not be negative")
        return value
    if opt.kind == "path":
        return Path(str(raw)).expanduser().absolute() if raw not in (None, "") else None
    return None if raw in (None, "") else str(raw)


def _raw(config: pytest.Config, opt: Option, environ: dict[str, str]) -> tuple[Any, str]:
    cli = config.getoption("kind_audit_" + opt.name, default=None)
    if cli is not None:
        return cli, "cli"
    if opt.env in environ:
        return environ[opt.env], "env"
    ini = config.getini(opt.ini)
    if isinstance(ini, str) and ini.strip():
        return ini.strip(), "ini"
    return opt.default, "default"


def resolve(config: pytest.Config, environ: dict[str, str] | None = None,
            new_name: Callable[[], str] = lambda: "kind-audit-" + secrets.token_hex(3)) -> Settings:  # fmt: skip
    """Read, convert and check every option; pytest.UsageError names the bad value and the valid ones."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        raw, source = _raw(config, opt, env)
        values[opt.name] = _convert(opt, raw, source)
        sources[opt.name] = source
    level = values["level"]
    if level not in LEVELS:
        where = {"cli": "--kind-audit-level", "env": ENV_PREFIX + "LEVEL", "ini": "kind_audit_level"}[sources["level"]]
        raise pytest.UsageError(f"{where}: {level!r} is not an audit level; valid levels: {', '.join(LEVELS)}")
    if values["policy"] is not None and sources["level"] != "default":
        raise pytest.UsageError(
            "--kind-audit-policy and --kind-audit-level cannot be combined: the policy file sets the levels; "
            "drop one of them"
        )
    try:
        policy = AuditPolicy.from_file(values["policy"]) if values["policy"] else AuditPolicy.for_level(level)
    except PolicyError as exc:
        raise pytest.UsageError(f"--kind-audit-policy: {exc}") from None
    try:
        base = load_base(values["kind_config"]) if values["kind_config"] else {}
    except ConfigError as exc:
        raise pytest.UsageError(f"--kind-audit-kind-config: {exc}") from None
    # Reuse needs a name that outlives the run.
    _check_output_paths(values["log_dir"], values["html"])
    name = values["cluster_name"] or ("kind-audit" if values["reuse_cluster"] else new_name())
    if not _valid_cluster_name(name):
        raise pytest.UsageError(
            f"--kind-audit-cluster-name: {name!r} is not a valid kind cluster name; use lowercase letters, "
            "digits and '-', starting with a letter, at most 40 characters"
        )
    return Settings(
        level=level,
        policy=values["policy"],
        kind_config=values["kind_config"],
        cluster_name=name,
        image=values["image"] or "",
        kind_binary=values["kind_binary"] or "kind",
        keep_cluster=values["keep_cluster"],
        reuse_cluster=values["reuse_cluster"],
        timeout=values["timeout"],
        require=values["require"],
        log_maxsize=values["log_maxsize"],
        log_dir=values["log_dir"],
        html=values["html"],
        html_secrets=values["html_secrets"],
        sources=sources,
        audit_policy=policy,
        base_config=base,
    )


def _check_output_paths(log_dir: Path | None, html: Path | None) -> None:
    if log_dir is not None:
        if log_dir.exists() and not log_dir.is_dir():
            raise pytest.UsageError(f"--kind-audit-log-dir: '{log_dir}' is not a directory")
        if not log_dir.is_dir():
            raise pytest.UsageError(f"--kind-audit-log-dir: directory '{log_dir}' does not exist; create it first")
        if not os.access(log_dir, os.W_OK | os.X_OK):
            raise pytest.UsageError(f"--kind-audit-log-dir: directory '{log_dir}' is not writable")
    if html is not None:
        if html.is_dir():
            raise pytest.UsageError(f"--kind-audit-html: '{html}' is a directory; name a file, e.g. {html}/audit.html")
        if not html.parent.is_dir():
            raise pytest.UsageError(f"--kind-audit-html: directory '{html.parent}' does not exist; create it first")
        if not os.access(html.parent, os.W_OK | os.X_OK) or (html.exists() and not os.access(html, os.W_OK)):
            raise pytest.UsageError(f"--kind-audit-html: '{html}' is not writable")


def _valid_cluster_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", name))
