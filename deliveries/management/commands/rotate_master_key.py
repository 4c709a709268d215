from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from deliveries.models import KeyEntry
from secupass import masterkeys, sxf
from secupass.models import UserKey, rewrap_peppers


class Command(BaseCommand):
    help = (
        "Re-wrap every server key entry (levels 1 and 2) and every SecuPass pepper under "
        "the current master key, "
        "the first one in MASTER_KEYS. Afterwards the older keys can be removed from "
        "MASTER_KEYS. Safe to run again; entries already under the current key are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500, help="entries per transaction")

    def handle(self, *args, batch, **options):
        current = masterkeys.current_kek_id()
        pending = KeyEntry.objects.filter(kind=KeyEntry.Kind.KEK).exclude(key_ref=current)
        missing = set(pending.values_list("key_ref", flat=True)) - set(settings.MASTER_KEYS)
        peppers = UserKey.objects.filter(pepper__isnull=False).exclude(pepper_kek_id=current)
        missing |= set(peppers.values_list("pepper_kek_id", flat=True)) - set(settings.MASTER_KEYS)
        if missing:
            raise CommandError(
                "These master keys are still used but not configured in MASTER_KEYS: "
                + ", ".join(sorted(missing))
                + ". Add them back (after the new one) and run again."
            )
        done = 0
        while True:
            with transaction.atomic():
                rows = list(pending.select_for_update(skip_locked=True).order_by("pk")[:batch])
                if not rows:
                    break
                for row in rows:
                    try:
                        key = masterkeys.unwrap(row.delivery_id, row.data)
                    except sxf.SXFError as e:
                        raise CommandError(
                            f"Key entry {row.pk} of delivery {row.delivery_id} does not unwrap: {e}"
                        ) from e
                    row.data = masterkeys.wrap(row.delivery_id, key)
                    row.key_ref = current
                    row.save(update_fields=["data", "key_ref"])
                done += len(rows)
        try:
            rewrapped = rewrap_peppers(batch)
        except sxf.SXFError as e:
            raise CommandError(f"A SecuPass pepper does not unwrap: {e}") from e
        left = KeyEntry.objects.filter(kind=KeyEntry.Kind.KEK).exclude(key_ref=current).count()
        left += peppers.count()
        self.stdout.write(
            self.style.SUCCESS(f"Re-wrapped {done} key entries under master key {current!r}.")
        )
        self.stdout.write(
            self.style.SUCCESS(f"Re-wrapped {rewrapped} SecuPass peppers under {current!r}.")
        )
        if left:
            raise CommandError(f"{left} entries are still under older keys; run again.")
        others = [k for k in settings.MASTER_KEYS if k != current]
        if others:
            self.stdout.write(
                "No entry uses these keys any more; you may remove them from MASTER_KEYS: "
                + ", ".join(others)
            )
