"""AuditEvents: an immutable list of audit events with query helpers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from .events import AuditEvent
from .query import AuditQuery

__all__ = ["AuditEvents"]


class AuditEvents(Sequence[AuditEvent]):
    """An immutable list of events with query helpers."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[AuditEvent] = ()) -> None:
        self._items = tuple(items)

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...
    @overload
    def __getitem__(self, index: slice) -> AuditEvents: ...
    def __getitem__(self, index: int | slice) -> AuditEvent | AuditEvents:
        if isinstance(index, slice):
            return AuditEvents(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AuditEvents):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return list(self._items) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def filter(self, **filters: Any) -> AuditEvents:
        """The events matching ``filters`` (see AuditQuery; ``stage`` defaults to ResponseComplete)."""
        query = AuditQuery(**filters)
        return AuditEvents([e for e in self._items if query.matches(e)])

    def one(self) -> AuditEvent:
        if len(self._items) != 1:
            raise AssertionError(f"expected exactly one audit event, found {len(self._items)}")
        return self._items[0]

    def first(self) -> AuditEvent | None:
        return self._items[0] if self._items else None

    def summary(self) -> str:
        return "\n".join(e.summary() for e in self._items)

    def __repr__(self) -> str:
        return f"AuditEvents({len(self._items)} events)"
