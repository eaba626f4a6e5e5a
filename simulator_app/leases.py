"""The one lease protocol for what one worker at a time must hold: a simulator, the shared price feed.

A leased row (a model built on `Leased`) names the worker holding it, until when the lease runs,
and an epoch that every claim bumps. Its holder renews the lease well before it lapses
(SIMULATOR_LEASE_RENEW_MS within SIMULATOR_LEASE_TTL_MS); once it lapses, any worker may claim the
row. A holder's writes are fenced: made through `held_by(worker_id, epoch)`, they match nothing
once another worker has claimed the row, so a worker that was cut off and comes back writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Self, TypeVar

from django.conf import settings
from django.db import models

_Row = TypeVar("_Row", bound=models.Model)


def lease_ttl() -> timedelta:
    return timedelta(milliseconds=settings.SIMULATOR_LEASE_TTL_MS)


class LeaseQuerySet(models.QuerySet[_Row]):
    def held_by(self, worker_id: str, epoch: int) -> Self:
        """The rows this worker holds under this epoch: the filter of every write a holder makes."""
        return self.filter(worker_id=worker_id, lease_epoch=epoch)

    def free(self, now: datetime) -> Self:
        """The rows nobody holds: never claimed, released, or their holder's lease lapsed."""
        return self.filter(models.Q(worker__isnull=True) | models.Q(lease_expires_at__lt=now))

    def renew(self, *, now: datetime, **fields: Any) -> int:
        """Extend the leases by a TTL from now (with `fields` written in the same UPDATE)."""
        return self.update(lease_expires_at=now + lease_ttl(), **fields)

    def release(self, *, now: datetime, **fields: Any) -> int:
        """Let go at once (with `fields` written in the same UPDATE): free from now, for any worker to claim."""
        return self.update(worker=None, lease_expires_at=now, **fields)


class Leased(models.Model):
    worker = models.ForeignKey(
        "simulator_app.SimulatorWorker",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The worker holding the lease (none: free).",
    )
    lease_epoch = models.PositiveIntegerField(
        default=0, help_text="Bumped by every claim; fences out the writes of an earlier holder."
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = LeaseQuerySet.as_manager()

    class Meta:
        abstract = True

    def is_held(self, *, now: datetime) -> bool:
        # The opposite of LeaseQuerySet.free: a holder without an end (never written so) still holds it.
        return self.worker_id is not None and (self.lease_expires_at is None or self.lease_expires_at >= now)

    def claim(self, *, worker_id: str, now: datetime) -> bool:
        """Take the lease if nobody holds it, under a new epoch; the caller has locked the row and
        saves it. False while a worker (this one too) holds it."""
        if self.is_held(now=now):
            return False
        self.worker_id = worker_id
        self.lease_epoch += 1
        self.lease_expires_at = now + lease_ttl()
        return True
