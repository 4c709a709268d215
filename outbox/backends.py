"""The embedded default's mail backend: print to the console and keep an .eml file.

A person trying SecuShare without an SMTP server can open ``var/mail/*.eml`` (or
``EMAIL_FILE_PATH``) or click the link printed on the console.  The files hold
live links with tokens, so only the owner of the process may read them.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.utils import timezone


class ConsoleAndFileBackend(ConsoleBackend):
    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        folder = Path(settings.EMAIL_FILE_PATH)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for message in email_messages:
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            name = f"{stamp}-{secrets.token_hex(4)}.eml"
            # Written under a temporary name and renamed, so a reader never sees half a mail.
            partial = folder / f".{name}.part"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(message.message().as_bytes(linesep="\r\n"))
            partial.replace(folder / name)
        return sent
