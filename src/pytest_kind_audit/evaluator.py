"""Which level kube-apiserver's audit policy gives a request, and which rule decided it.

Matching follows the API server's policy checker exactly: the first matching rule wins; users and
userGroups see the authenticated identity (never the impersonated one); a rule with resources or
namespaces only matches resource requests, one with nonResourceURLs only non-resource requests, and one
with neither matches everything; no match means None.

One rule depends on the Kubernetes version: ``group: "*"`` in a rule's resources matches every API group,
the core group ``""`` included, from Kubernetes 1.36 (k8s.io/apiserver v0.36, pkg/audit/policy/checker.go);
older API servers refuse a policy with it at start. With the version unknown (None), "*" is a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import AuditEvent

__all__ = ["GROUP_WILDCARD_SINCE", "Decision", "RequestAttributes", "evaluate", "explain", "group_wildcard"]

#: The first Kubernetes whose API server takes ``group: "*"`` in a policy rule's resources as every API group.
GROUP_WILDCARD_SINCE = (1, 36, 0)


def group_wildcard(kubernetes_version: tuple[int, int, int] | None) -> bool:
    """Whether ``group: "*"`` matches every API group on this Kubernetes (None: unknown, taken as yes)."""
    return kubernetes_version is None or kubernetes_version >= GROUP_WILDCARD_SINCE


@dataclass(frozen=True)
class RequestAttributes:
    """What the policy sees of a request. ``user=None`` is an unauthenticated request."""

    verb: str
    user: str | None = None
    groups: tuple[str, ...] = ()
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    path: str = ""
    is_resource: bool | None = None

    def __post_init__(self) -> None:
        # Any iterable of groups (a list from a caller) becomes a tuple: the attributes stay hashable.
        object.__setattr__(self, "groups", tuple(self.groups))

    @property
    def resource_request(self) -> bool:
        return bool(self.resource) if self.is_resource is None else self.is_resource

    @classmethod
    def from_event(cls, event: AuditEvent) -> RequestAttributes:
        """The attributes the API server evaluated when it logged ``event``."""
        ref = event.object_ref
        user = event.user.username or None
        return cls(
            verb=event.verb,
            user=user,
            groups=event.user.groups,
            resource=ref.resource if ref else "",
            subresource=ref.subresource if ref else "",
            namespace=ref.namespace if ref else "",
            name=ref.name if ref else "",
            api_group=ref.api_group if ref else "",
            path=event.path,
            is_resource=ref is not None,
        )


@dataclass(frozen=True)
class Decision:
    """The level a policy gives a request; ``rule_index`` is 0-based (None: no rule matched)."""

    level: str
    rule_index: int | None
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule: Mapping[str, Any] | None

    def describe(self) -> str:
        if self.rule_index is None:
            return f"{self.level} (no rule matches: the default is None)"
        return f"{self.level} by rule {self.rule_index + 1} (1-based): {_compact(self.rule or {})}"


def _compact(rule: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(rule), separators=(", ", ": "))


def evaluate(rules: Sequence[Mapping[str, Any]], attrs: RequestAttributes, *,
             omit_stages: Sequence[str] = (), omit_managed_fields: bool = False,
             kubernetes_version: tuple[int, int, int] | None = None) -> Decision:  # fmt: skip
    """The level ``rules`` give ``attrs`` on ``kubernetes_version`` (None: unknown, the newest behaviour)."""
    wildcard = group_wildcard(kubernetes_version)
    for i, rule in enumerate(rules):
        if _why_not(rule, attrs, wildcard) is None:
            rule_omf = rule.get("omitManagedFields")
            return Decision(
                level=rule.get("level", "None"),
                rule_index=i,
                omit_stages=frozenset(omit_stages) | frozenset(rule.get("omitStages") or ()),
                omit_managed_fields=omit_managed_fields if rule_omf is None else bool(rule_omf),
                rule=rule,
            )
    return Decision("None", None, frozenset(omit_stages), omit_managed_fields, None)


def explain(rules: Sequence[Mapping[str, Any]], attrs: RequestAttributes, *,
            kubernetes_version: tuple[int, int, int] | None = None) -> list[str]:  # fmt: skip
    """For each rule up to the one that matches, why it does or does not match (1-based)."""
    wildcard = group_wildcard(kubernetes_version)
    out = []
    for i, rule in enumerate(rules, 1):
        reason = _why_not(rule, attrs, wildcard)
        if reason is None:
            out.append(f"rule {i} matches: level {rule.get('level')}")
            break
        out.append(f"rule {i} skipped: {reason}")
    else:
        out.append("no rule matches: level None")
    return out


def _why_not(rule: Mapping[str, Any], a: RequestAttributes, wildcard: bool) -> str | None:
    """The first predicate of ``rule`` that ``a`` fails, in the API server's order; None if it matches."""
    users = rule.get("users") or []
    if users and (a.user is None or a.user not in users):
        return f"users {users} does not include {a.user!r}"
    groups = rule.get("userGroups") or []
    if groups and (a.user is None or not any(g in groups for g in a.groups)):
        return f"userGroups {groups} shares no group with {list(a.groups)}"
    verbs = rule.get("verbs") or []
    if verbs and a.verb not in verbs:
        return f"verbs {verbs} does not include {a.verb!r}"
    namespaces = rule.get("namespaces") or []
    resources = rule.get("resources") or []
    if namespaces or resources:
        if not a.resource_request:
            return "it is a resource rule and this is a non-resource request"
        if namespaces and a.namespace not in namespaces:
            return f"namespaces {namespaces} does not include {a.namespace!r}"
        if not resources:
            return None
        return None if _resources_match(resources, a, wildcard) else _resources_miss(resources, a, wildcard)
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if a.resource_request:
            return "it is a nonResourceURLs rule and this is a resource request"
        if not any(_url_match(spec, a.path) for spec in urls):
            return f"nonResourceURLs {urls} does not match {a.path!r}"
    return None


def _url_match(spec: str, path: str) -> bool:
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec[:-1]))


def _resources_match(resources: Sequence[Mapping[str, Any]], a: RequestAttributes, wildcard: bool) -> bool:
    combined = a.resource + (f"/{a.subresource}" if a.subresource else "")
    for gr in resources:
        group = gr.get("group", "")
        if group != a.api_group and not (wildcard and group == "*"):
            continue
        names = gr.get("resourceNames") or []
        listed = gr.get("resources") or []
        if not listed:
            return True
        for res in listed:
            if names and a.name not in names:
                continue
            if res == combined or res == "*":
                return True
            if a.subresource and res.startswith("*/") and a.subresource == res[2:]:
                return True
            if res.endswith("/*") and a.resource == res[:-2]:
                return True
    return False


def _resources_miss(resources: Sequence[Mapping[str, Any]], a: RequestAttributes, wildcard: bool) -> str:
    combined = a.resource + (f"/{a.subresource}" if a.subresource else "")
    groups = sorted({gr.get("group", "") for gr in resources})
    if a.api_group not in groups and not (wildcard and "*" in groups):
        return f"resources are in API groups {groups}, the request is in {a.api_group!r}"
    return f"resources {[dict(gr) for gr in resources]} do not cover {combined!r} named {a.name!r}"
