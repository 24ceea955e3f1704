"""Audit policies: build one for a level, load and validate a user's file, write the YAML.

Validation follows kube-apiserver's policy reader and validator, so a policy the API server would refuse
at start fails here, before any cluster is created. What the API server takes depends on its version
(``group: "*"`` only from 1.36): a policy read without a version accepts what the newest one takes, and
``AuditPolicy.for_kubernetes`` checks it against, and binds it to, the cluster's version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# PyYAML is imported where it is used: pytest loads this module with the plugin, and a run that makes no
# cluster never reads or writes YAML.
from .evaluator import GROUP_WILDCARD_SINCE, Decision, RequestAttributes, evaluate, explain, group_wildcard
from .events import STAGES
from .exceptions import PolicyError

__all__ = ["LEVELS", "AuditPolicy"]

#: Audit levels, lowest first.
LEVELS = ("None", "Metadata", "Request", "RequestResponse")

_RULE_KEYS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)
_GROUP_RESOURCE_KEYS = frozenset({"group", "resources", "resourceNames"})
_POLICY_KEYS = frozenset({"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"})
_RULE_LIST_KEYS = ("users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# Requests a fresh cluster makes many times a minute and no test is about: control-plane leader
# election and node heartbeats, and health probes. Users who need them pass their own policy.
_NOISE_RULES: tuple[dict[str, Any], ...] = (
    {
        "level": "None",
        "users": ["system:kube-controller-manager", "system:kube-scheduler"],
        "verbs": ["get", "update"],
        "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
    },
    {
        "level": "None",
        "userGroups": ["system:nodes"],
        "verbs": ["get", "update", "patch"],
        "resources": [
            {"group": "coordination.k8s.io", "resources": ["leases"]},
            {"group": "", "resources": ["nodes", "nodes/status"]},
        ],
    },
    {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*"]},
)


@dataclass(frozen=True)
class AuditPolicy:
    """An audit.k8s.io/v1 Policy. ``rules`` are plain dicts in the API's camelCase, first match wins."""

    rules: Sequence[Mapping[str, Any]]
    omit_stages: Sequence[str] = ()
    source: str = "built-in"
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Keys kube-apiserver would silently drop, with a suggestion each (see ``misspellings``).
    unknown: tuple[str, ...] = ()
    #: The Kubernetes (major, minor, patch) this policy was checked for and is evaluated as (see
    #: ``for_kubernetes``); None: unknown, so it is taken as the newest. Never written to the YAML.
    kubernetes_version: tuple[int, int, int] | None = None

    @classmethod
    def for_level(cls, level: str) -> AuditPolicy:
        """Everything at ``level``, minus control-plane heartbeats and health probes."""
        if level not in LEVELS:
            raise PolicyError(f"unknown audit level {level!r}; valid levels: {', '.join(LEVELS)}")
        rules = [dict(r) for r in _NOISE_RULES] + [{"level": level}]
        return cls(rules=rules, source=f"built-in, level {level}")

    @classmethod
    def from_file(cls, path: str | Path) -> AuditPolicy:
        import yaml

        p = Path(path)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise PolicyError(f"audit policy file {str(p)!r} does not exist") from None
        except IsADirectoryError:
            raise PolicyError(f"audit policy file {str(p)!r} is a directory") from None
        except OSError as exc:
            raise PolicyError(f"audit policy file {str(p)!r} cannot be read: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise PolicyError(f"audit policy file {str(p)!r} is not valid YAML{where}") from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "dict") -> AuditPolicy:
        errors = validate(data)
        if errors:
            raise PolicyError(f"audit policy {source}: {errors[0]}" + _more(errors))
        assert isinstance(data, dict)
        extra = {
            k: v
            for k, v in data.items()
            if k in _POLICY_KEYS and k not in ("apiVersion", "kind", "rules", "omitStages")
        }
        return cls(rules=data["rules"], omit_stages=data.get("omitStages") or (), source=source, extra=extra,
                   unknown=tuple(unknown_keys(data)))  # fmt: skip

    def for_kubernetes(self, version: tuple[int, int, int]) -> AuditPolicy:
        """This policy checked for and bound to Kubernetes ``version`` (major, minor, patch): raises
        PolicyError when that version's API server would refuse it; ``level_for`` and friends then match
        as that version does."""
        if not (isinstance(version, tuple) and len(version) == 3 and all(type(n) is int for n in version)):
            raise TypeError(f"Kubernetes version must be a (major, minor, patch) tuple of ints, got {version!r}")
        errors = validate(self.to_dict(), kubernetes_version=version)
        if errors:
            raise PolicyError(f"audit policy {self.source}: {errors[0]}" + _more(errors))
        return replace(self, kubernetes_version=version)

    @property
    def min_kubernetes_version(self) -> tuple[int, int, int] | None:
        """The oldest Kubernetes whose API server takes this policy, when that depends on the version (a
        ``group: "*"`` needs 1.36); None when it does not."""
        for rule in self.rules:
            for gr in rule.get("resources") or []:
                if isinstance(gr, Mapping) and gr.get("group") == "*":
                    return GROUP_WILDCARD_SINCE
        return None

    def misspellings(self) -> list[str]:
        """One line per dropped key, naming the field it probably meant."""
        import difflib

        out = []
        for path in self.unknown:
            key = path.rsplit(".", 1)[-1]
            known = _GROUP_RESOURCE_KEYS if ".resources." in path else _RULE_KEYS if "." in path else _POLICY_KEYS
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"audit policy {self.source}: {path!r} is not a Policy field; kube-apiserver drops it "
                       f"silently, which widens the rule{hint}")  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}
        if self.omit_stages:
            out["omitStages"] = list(self.omit_stages)
        out.update(self.extra)
        out["rules"] = [dict(r) for r in self.rules]
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def write(self, path: str | Path) -> Path:
        """Write the policy YAML to ``path`` (created fresh, so a bind mount never finds a directory)."""
        p = Path(path).absolute()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_yaml())
        return p

    def level_for(self, **request: Any) -> Decision:
        """The level this policy gives a request, and the rule that decided it. Keywords are those of
        RequestAttributes: verb, user, groups, resource, subresource, namespace, name, api_group, path."""
        return self.decide(RequestAttributes(**request))

    def decide(self, attrs: RequestAttributes) -> Decision:
        return evaluate(self.rules, attrs, omit_stages=self.omit_stages,
                        omit_managed_fields=bool(self.extra.get("omitManagedFields", False)),
                        kubernetes_version=self.kubernetes_version)  # fmt: skip

    def explain(self, **request: Any) -> list[str]:
        """Rule by rule, why the request is or is not matched (for "why was this not audited?")."""
        return explain(self.rules, RequestAttributes(**request), kubernetes_version=self.kubernetes_version)

    @property
    def max_level(self) -> str:
        """The highest level any rule assigns."""
        return max((r.get("level", "None") for r in self.rules), key=LEVELS.index, default="None")


def _more(errors: list[str]) -> str:
    return f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""


def validate(data: Any, *, kubernetes_version: tuple[int, int, int] | None = None) -> list[str]:
    """What kube-apiserver's policy reader and validator would refuse, as messages; empty when valid.
    ``kubernetes_version`` None: what the newest API server refuses."""
    if not isinstance(data, dict):
        return [f"must be a mapping with apiVersion: audit.k8s.io/v1 and kind: Policy, got {type(data).__name__}"]
    errors: list[str] = []
    if data.get("apiVersion") != "audit.k8s.io/v1":
        errors.append(f"apiVersion must be audit.k8s.io/v1, got {data.get('apiVersion')!r}")
    if data.get("kind") != "Policy":
        errors.append(f"kind must be Policy, got {data.get('kind')!r}")
    errors += _check_stages(data.get("omitStages"), "omitStages")
    rules = data.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [*errors, f"rules must be a list of rules (`rules: [{{level: Metadata}}]`), got {_kind(rules)}"]
    if not rules:
        errors.append("has no rules (kube-apiserver refuses a policy with 0 rules)")
        return errors
    for i, rule in enumerate(rules, 1):
        errors += [f"rule {i}: {e}" for e in _check_rule(rule, kubernetes_version)]
    return errors


def _kind(value: Any) -> str:
    """How a wrongly typed value reads in a message: a mapping, a string 'x', the number 3."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _fmt_version(version: tuple[int, int, int]) -> str:
    return "v" + ".".join(map(str, version))


def _check_stages(stages: Any, where: str) -> list[str]:
    if stages is None:
        return []
    if not isinstance(stages, list):
        return [f"{where} must be a list of stages (`{where}: [RequestReceived]`), got {_kind(stages)}"]
    return [f"{where}: unknown stage {s!r}; valid stages: {', '.join(STAGES)}" for s in stages if s not in STAGES]


def _check_rule(rule: Any, kubernetes_version: tuple[int, int, int] | None) -> list[str]:
    if not isinstance(rule, dict):
        return ["must be a mapping"]
    errors: list[str] = []
    for key in _RULE_LIST_KEYS:
        value = rule.get(key)
        if value is not None and not isinstance(value, list):
            errors.append(f"{key} must be a list (`{key}: [...]`), got {_kind(value)}")
    if errors:
        return errors
    level = rule.get("level")
    if level is None:
        errors.append(f"level is required; valid levels: {', '.join(LEVELS)}")
    elif level not in LEVELS:
        errors.append(f"unknown level {level!r}; valid levels: {', '.join(LEVELS)}")
    errors += _check_stages(rule.get("omitStages"), "omitStages")
    urls = rule.get("nonResourceURLs") or []
    if urls and (rule.get("resources") or rule.get("namespaces")):
        errors.append("rules cannot apply to both regular resources and non-resource URLs")
    for url in urls:
        if not isinstance(url, str) or not (url == "*" or url.startswith("/")):
            errors.append(f"nonResourceURLs: {url!r} must be '*' or start with '/' (a path: '/healthz', not 'healthz')")
        elif "*" in url[:-1]:
            errors.append(f"nonResourceURLs: {url!r} may only have '*' as its last character")
    for gr in rule.get("resources") or []:
        if not isinstance(gr, dict):
            errors.append("resources entries must be mappings with group/resources/resourceNames")
            continue
        lists = [k for k in ("resources", "resourceNames") if gr.get(k) is not None and not isinstance(gr[k], list)]
        if lists:
            errors += [f"resources: {k} must be a list (`{k}: [...]`), got {_kind(gr[k])}" for k in lists]
            continue
        group = gr.get("group", "")
        if group == "*" and kubernetes_version is not None and not group_wildcard(kubernetes_version):
            since = ".".join(map(str, GROUP_WILDCARD_SINCE[:2]))
            errors.append(
                f"resources: group '*' matches every API group only from Kubernetes {since}; "
                f"{_fmt_version(kubernetes_version)} refuses it (list each group in its own resources entry, "
                f'"" for the core group)'
            )
        elif group not in ("", "*") and not (isinstance(group, str) and _DNS1123_SUBDOMAIN.fullmatch(group)):
            errors.append(f"resources: group {group!r} is not a valid API group (no version: 'apps', not 'apps/v1')")
        if gr.get("resourceNames") and not gr.get("resources"):
            errors.append("resources: resourceNames requires resources")
    return errors


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Keys kube-apiserver would silently drop (falling back to lenient decoding), as dotted paths."""
    found = [k for k in data if k not in _POLICY_KEYS]
    for i, rule in enumerate(data.get("rules") or [], 1):
        if isinstance(rule, dict):
            found += [f"rules[{i}].{k}" for k in rule if k not in _RULE_KEYS]
            for gr in rule.get("resources") or []:
                if isinstance(gr, dict):
                    found += [f"rules[{i}].resources.{k}" for k in gr if k not in _GROUP_RESOURCE_KEYS]
    return found
