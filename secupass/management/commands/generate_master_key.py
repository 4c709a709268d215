import base64
import secrets

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Print a new server master key as ID:BASE64URL. Put it FIRST in MASTER_KEYS "
        "(keep the old keys after it), restart, then run rotate_master_key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", default=None, help="key id (default: random)")

    def handle(self, *args, id, **options):
        kid = id or secrets.token_hex(4)
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        self.stdout.write(f"{kid}:{key}")
