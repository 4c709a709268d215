"""The server master keys that wrap level 1 and 2 delivery keys (DESIGN.md section 4)."""

from django.conf import settings

from secupass import sxf


def current_kek_id() -> str:
    return next(iter(settings.MASTER_KEYS))


def wrap(delivery_id, delivery_key: bytes) -> dict:
    kek_id = current_kek_id()
    return sxf.wrap_kek(settings.MASTER_KEYS[kek_id], kek_id, delivery_id, delivery_key)


def unwrap(delivery_id, entry: dict) -> bytes:
    try:
        master = settings.MASTER_KEYS[entry["kek_id"]]
    except KeyError:
        raise sxf.SXFError(
            f"master key {entry.get('kek_id')!r} is not configured (MASTER_KEYS)"
        ) from None
    return sxf.unwrap_kek(master, entry, delivery_id)
