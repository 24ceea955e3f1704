"""Every option in one table: CLI flag, ini key, environment variable, default. Resolved once, validated,
with the source of each value (CLI over env over ini over default).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
    """One option. Its Settings field is named ``name``; flag, ini key and env var are derived from it."""

    name: str
    help: str
    default: Any
    kind: str = "str"  # str | bool | int | float | path
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

    @property
    def dest(self) -> str:
        return "kind_audit_" + self.name

    def where(self, source: str) -> str:
        """How the user spelled the option a value came from."""
        return {"cli": self.flag, "env": self.env, "ini": self.ini}.get(source, self.flag)


def _option(help: str, default: Any = None, kind: str = "str", metavar: str | None = None) -> Any:
    """A Settings field that is an option: adding an option is adding one of these."""
    return field(default=default, metadata={"option": (help, kind, metavar)})


@dataclass(frozen=True)
class Settings:
    """The resolved options, and what is derived from them before any cluster exists."""

    audit_policy: AuditPolicy
    base_config: dict[str, Any]
    # The options, in the order --help lists them.
    level: str = _option(f"Audit level of the built-in policy: {', '.join(LEVELS)} (default Metadata)",
                         "Metadata", metavar="LEVEL")  # fmt: skip
    policy: Path | None = _option("An audit.k8s.io/v1 Policy file to use instead of the built-in policy",
                                  kind="path", metavar="FILE")  # fmt: skip
    kind_config: Path | None = _option("A kind Cluster config file; the audit wiring is merged into it",
                                       kind="path", metavar="FILE")  # fmt: skip
    cluster_name: str = _option("Name of the kind cluster (default: kind-audit-<random>)", "", metavar="NAME")
    image: str = _option("Node image for kind create cluster (default: kind's own)", "", metavar="IMAGE")
    kind_binary: str = _option("The kind executable (default: kind on PATH)", "kind", metavar="PATH")
    keep_cluster: bool = _option("Keep the cluster after the run (its delete command is printed)", False, "bool")
    reuse_cluster: bool = _option("Reuse a running cluster of that name made by this plugin if its audit "
                                  "configuration matches (else create and keep it); default name kind-audit",
                                  False, "bool")  # fmt: skip
    timeout: float = _option("Seconds assert_audited waits for events to be written (default 10)", 10.0,
                             "float", "SECONDS")  # fmt: skip
    require: bool = _option("A missing Docker, kind or node image is an error instead of a skip", False, "bool")
    log_dir: Path | None = _option("Save the session's whole audit log to this directory (mode 0600) and "
                                   "summarize it", kind="path", metavar="DIR")  # fmt: skip
    html: Path | None = _option("Write a self-contained HTML report of each test's audit events to this file",
                                kind="path", metavar="FILE")  # fmt: skip
    html_secrets: bool = _option("Show Secret data in the HTML report (redacted by default)", False, "bool")
    log_maxsize: int = _option("Rotate the audit log at this many MB (--audit-log-maxsize; default: the API "
                               "server's own)", 0, "int", "MB")  # fmt: skip

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


#: Every option, derived from the Settings fields that carry one.
OPTIONS: tuple[Option, ...] = tuple(
    Option(f.name, f.metadata["option"][0], f.default, f.metadata["option"][1], f.metadata["option"][2])
    for f in fields(Settings)
    if "option" in f.metadata
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("kind-audit", "real kind clusters with Kubernetes API auditing")
    for opt in OPTIONS:
        help_text = f"{opt.help}. ini: {opt.ini}, env: {opt.env}"
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_const", const=True, default=None, dest=opt.dest,
                            help=help_text)  # fmt: skip
        else:
            group.addoption(opt.flag, action="store", default=None, metavar=opt.metavar, dest=opt.dest,
                            help=help_text)  # fmt: skip
        # Every ini value is read as text and converted like the env var (pytest 7 has no float type,
        # and its string default for None is an empty list).
        parser.addini(opt.ini, opt.help, type="string", default="")


def _convert(opt: Option, raw: Any, source: str) -> Any:
    where = opt.where(source)
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
    return opt.default if raw in (None, "") else str(raw)


def _raw(config: pytest.Config, opt: Option, environ: dict[str, str]) -> tuple[Any, str]:
    cli = config.getoption(opt.dest, default=None)
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
    by_name = {opt.name: opt for opt in OPTIONS}
    level = values["level"]
    if level not in LEVELS:
        where = by_name["level"].where(sources["level"])
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
    _check_output_paths(values["log_dir"], values["html"])
    # Reuse needs a name that outlives the run.
    values["cluster_name"] = values["cluster_name"] or ("kind-audit" if values["reuse_cluster"] else new_name())
    if not _valid_cluster_name(values["cluster_name"]):
        raise pytest.UsageError(
            f"--kind-audit-cluster-name: {values['cluster_name']!r} is not a valid kind cluster name; use "
            "lowercase letters, digits and '-', starting with a letter, at most 40 characters"
        )
    return Settings(audit_policy=policy, base_config=base, **values)


def _check_output_paths(log_dir: Path | None, html: Path | None) -> None:
    """Output directories are made when missing (as --junitxml does); what cannot be written is a usage
    error now, before any cluster exists."""
    if log_dir is not None:
        if log_dir.exists() and not log_dir.is_dir():
            raise pytest.UsageError(f"--kind-audit-log-dir: '{log_dir}' is not a directory")
        _make_dir("--kind-audit-log-dir", log_dir)
        if not os.access(log_dir, os.W_OK | os.X_OK):
            raise pytest.UsageError(f"--kind-audit-log-dir: directory '{log_dir}' is not writable")
    if html is not None:
        if html.is_dir():
            raise pytest.UsageError(f"--kind-audit-html: '{html}' is a directory; name a file, e.g. {html}/audit.html")
        _make_dir("--kind-audit-html", html.parent)
        if not os.access(html.parent, os.W_OK | os.X_OK) or (html.exists() and not os.access(html, os.W_OK)):
            raise pytest.UsageError(f"--kind-audit-html: '{html}' is not writable")


def _make_dir(flag: str, path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{flag}: cannot create directory '{path}': {exc.strerror}") from None


def _valid_cluster_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", name))
