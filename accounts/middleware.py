from django.shortcuts import redirect
from django.urls import reverse

_users_exist = False


def users_exist() -> bool:
    """True once any account exists; cached for the process, since that never reverts."""
    global _users_exist
    if not _users_exist:
        from accounts.models import User

        _users_exist = User.objects.exists()
    return _users_exist


def forget_users_exist() -> None:
    global _users_exist
    _users_exist = False


class SetupMiddleware:
    """While no account exists, every page leads to the setup page."""

    OPEN_PREFIXES = ("/static/", "/healthz", "/accounts/language/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        setup = reverse("accounts:setup")
        if not request.path.startswith((*self.OPEN_PREFIXES, setup)) and not users_exist():
            return redirect(setup)
        return self.get_response(request)
