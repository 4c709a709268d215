from django.core.management.base import BaseCommand, CommandError

from accounts.emails import normalize_email
from accounts.models import User
from accounts.tokens import issue_token


class Command(BaseCommand):
    help = (
        "Create a personal API token for a sender and print it. The token is the last word "
        "of the output and is not stored anywhere: keep it now."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="the sender's e-mail address")
        parser.add_argument(
            "--name", default="command line", help="what the token is for (default: %(default)s)"
        )

    def handle(self, *args, email, name, **options):
        email = normalize_email(email)
        user = User.objects.filter(email=email).first()
        if user is None:
            raise CommandError(f"There is no account for {email}.")
        if not user.is_sender:
            raise CommandError(f"{email} is not an active sender; only senders get API tokens.")
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters long.")
        _row, token = issue_token(user, name)
        self.stdout.write(f"Created API token “{name}” for {email}. It is shown only once:")
        self.stdout.write(token)
