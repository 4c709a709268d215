"""One writer at a time for a tus upload, held in the upload's database row.

Every web process can take any PATCH, so the lock lives where they all look: the row.

- A PATCH *claims* the row with one conditional UPDATE: the upload is unfinished, at the
  offset the client sent, and nobody holds a lease that is still running. It writes a
  random token and ``lease_until = now + LEASE``.
- While the body streams, the lease is *renewed* right after a read returns data, so it
  is fresh whenever bytes go to the store; if another writer has taken it meanwhile (this
  one stalled for longer than LEASE), the renewal fails and nothing more is written.
- The new offset and upload state are *recorded* with ``UPDATE ... WHERE offset = old AND
  lease_token = token``, which also frees the lease; a failed request frees it on the way
  out. A process that dies holding a lease blocks the upload for at most LEASE (clients get
  423 and retry).

Times are the database's (``Now()``), so web nodes with skewed clocks agree.
"""

import secrets
import time
from datetime import timedelta

from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now

from deliveries.models import DeliveryFile
from deliveries.storage import Busy
from secushare.db import release_connections

LEASE = timedelta(seconds=30)
RENEW_AFTER = 5.0  # seconds between renewals while bytes arrive


def _until():
    return ExpressionWrapper(Now() + LEASE, output_field=DateTimeField())


class Lease:
    def __init__(self, pk, token: str):
        self.pk = pk
        self.token = token
        self.renewed = time.monotonic()

    @classmethod
    def claim(cls, f: DeliveryFile, offset: int) -> "Lease | None":
        """The lease on ``f`` at ``offset``, or None (gone, moved on, or held by another)."""
        token = secrets.token_hex(16)
        claimed = (
            DeliveryFile.objects.filter(pk=f.pk, offset=offset, state=DeliveryFile.State.UPLOADING)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
            .update(lease_token=token, lease_until=_until())
        )
        return cls(f.pk, token) if claimed else None

    def _mine(self):
        return DeliveryFile.objects.filter(pk=self.pk, lease_token=self.token)

    def renew(self) -> None:
        renewed = self._mine().update(lease_until=_until())
        release_connections()  # more of the body is still on its way
        if not renewed:
            raise Busy(f"upload {self.pk}: another request took over the lease")
        self.renewed = time.monotonic()

    def guard(self, read):
        """``read`` that keeps the lease fresh, and stops if it was lost."""

        def guarded(n: int) -> bytes:
            data = read(n)
            if data and time.monotonic() - self.renewed > RENEW_AFTER:
                self.renew()
            return data

        return guarded

    def record(self, old_offset: int, **changes) -> bool:
        """Store ``changes`` if the row is still at ``old_offset`` and ours; frees the lease."""
        return bool(
            self._mine()
            .filter(offset=old_offset, state=DeliveryFile.State.UPLOADING)
            .update(**changes, lease_token="", lease_until=None)
        )

    def release(self) -> None:
        self._mine().update(lease_token="", lease_until=None)
