"""Audit events for SecuPass key events (the signals of ``secupass.signals``).

Connected in ``DeliveriesConfig.ready``. Only public facts go into the detail: the
key ids and fingerprints, never a pepper, record or key.
"""

from deliveries.audit import record
from deliveries.models import AuditEvent


def on_key_created(sender, *, user, key, **kwargs):
    record(
        AuditEvent.Kind.KEY_CREATED,
        actor=user,
        key_id=str(key.id),
        fingerprint=key.shown_fingerprint,
    )


def on_key_reset(sender, *, user, old_key, new_key, **kwargs):
    record(
        AuditEvent.Kind.KEY_RESET,
        actor=user,
        key_id=str(new_key.id),
        fingerprint=new_key.shown_fingerprint,
        old_key_id=str(old_key.id),
    )


def on_key_unlocked(sender, *, user, key, request=None, **kwargs):
    record(AuditEvent.Kind.KEY_UNLOCKED, request=request, actor=user, key_id=str(key.id))


def connect():
    from secupass import signals

    signals.key_created.connect(on_key_created, dispatch_uid="deliveries.audit.key_created")
    signals.key_reset.connect(on_key_reset, dispatch_uid="deliveries.audit.key_reset")
    signals.key_unlocked.connect(on_key_unlocked, dispatch_uid="deliveries.audit.key_unlocked")
