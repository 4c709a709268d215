import getpass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from accounts.emails import normalize_email
from accounts.models import User


class Command(BaseCommand):
    help = "Create an internal sender account (the password is asked for, or read from a file)."

    def add_arguments(self, parser):
        parser.add_argument("email", help="the sender's e-mail address, used to log in")
        parser.add_argument("--name", default="", help="display name")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="read the password from this file (first line) instead of asking",
        )
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="language of the pages and mails (default: %(default)s)",
        )
        parser.add_argument("--admin", action="store_true", help="also make an administrator")

    def handle(self, *args, email, name, password_file, language, admin, **options):
        email = normalize_email(email)
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid e-mail address.") from None
        if User.objects.filter(email=email).exists():
            raise CommandError(f"An account for {email} exists already.")
        password = self._password(password_file)
        user = User(email=email, name=name, language=language)
        try:
            password_validation.validate_password(password, user)
        except ValidationError as e:
            raise CommandError("Password refused: " + " ".join(e.messages)) from None
        with transaction.atomic():
            user.set_password(password)
            user.kind = User.Kind.SENDER
            user.is_staff = user.is_superuser = admin
            user.save()
        self.stdout.write(self.style.SUCCESS(f"Created sender {email}."))

    def _password(self, password_file):
        if password_file:
            try:
                lines = password_file.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise CommandError(f"Cannot read {password_file}: {e.strerror}") from None
            if not lines or not lines[0]:
                raise CommandError(f"The first line of {password_file} holds no password.")
            return lines[0]
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ.")
        return first
