"""Outbox rows and what the outbox needs from the state store, declared here so outputs never imports runtime."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Delivery:
    """One outbox row: a notification for one sink; `attempts` counts the attempts made so far."""

    id: int
    delivery_id: str
    sink: str
    event: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    last_error: str | None
    status: str
    delivered_at: datetime | None
    replayed_at: datetime | None = None

    @property
    def age_from(self) -> datetime:
        """Where the outbox's max age counts from: the replay by `retry_dead`, else the creation."""
        return self.replayed_at or self.created_at


class OutboxStore(Protocol):
    """The durable outbox as the dispatcher uses it (`driftwatch.runtime.store.Store` is one)."""

    def due_deliveries(
        self,
        now: datetime,
        limit: int = 100,
        *,
        sink: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Delivery]:
        """Pending rows due at `now`, oldest due first: of `sink` only, or of no sink in `exclude`."""
        ...

    def mark_delivered(self, id: int, now: datetime) -> None:
        """The sink accepted the row."""
        ...

    def mark_retry(self, id: int, next_attempt_at: datetime, error: str) -> None:
        """The attempt failed; try again at `next_attempt_at`."""
        ...

    def mark_dead(self, id: int, error: str) -> None:
        """Give up on the row (a dead letter)."""
        ...
