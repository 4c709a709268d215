from accounts.throttle import client_address
from deliveries.models import AuditEvent


def record(kind, *, request=None, actor=None, delivery=None, recipient=None, **detail):
    """Write one audit event. Never pass secrets (tokens, keys) in ``detail``."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if delivery is None and recipient is not None:
        delivery = recipient.delivery
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor,
        delivery=delivery,
        recipient=recipient,
        address=client_address(request) or None if request is not None else None,
        detail=detail,
    )
