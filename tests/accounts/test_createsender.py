import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User


@pytest.fixture
def password_file(tmp_path, password):
    path = tmp_path / "password"
    path.write_text(password + "\n")
    return path


def test_creates_a_sender_who_can_log_in(db, password_file, password, capsys):
    call_command("createsender", "Xavier@Example.org", "--password-file", password_file)

    assert "Created sender xavier@example.org." in capsys.readouterr().out
    user = User.objects.get()
    assert (user.email, user.kind, user.is_staff, user.language) == (
        "xavier@example.org",
        User.Kind.SENDER,
        False,
        "en",
    )
    response = Client().post(
        reverse("accounts:login"), {"email": "xavier@example.org", "password": password}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_name_language_and_admin(db, password_file):
    call_command(
        "createsender",
        "boss@example.org",
        "--password-file",
        password_file,
        "--name",
        "Berta Boss",
        "--language",
        "de",
        "--admin",
    )

    user = User.objects.get()
    assert (user.name, user.language, user.is_staff, user.is_superuser) == (
        "Berta Boss",
        "de",
        True,
        True,
    )


def test_existing_address_is_refused(sender, password_file):
    with pytest.raises(CommandError, match=r"An account for sender@example\.org exists already\."):
        call_command("createsender", "SENDER@example.org", "--password-file", password_file)

    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("email", "content", "message"),
    [
        ("not-an-address", None, "'not-an-address' is not a valid e-mail address."),
        ("x@example.org", "abc123\n", "Password refused: This password is too short."),
        ("x@example.org", "password123\n", "Password refused: This password is too common."),
        ("x@example.org", "\nsecond line\n", "holds no password."),
    ],
    ids=["bad-address", "short-password", "common-password", "empty-file"],
)
def test_bad_input_is_refused_with_a_clear_message(db, tmp_path, email, content, message):
    path = tmp_path / "password"
    path.write_text(content or "correct horse battery staple\n")

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("createsender", email, "--password-file", path)

    assert not User.objects.exists()


def test_missing_password_file_is_refused(db, tmp_path):
    missing = tmp_path / "nope"

    with pytest.raises(
        CommandError, match=re.escape(f"Cannot read {missing}: No such file or directory")
    ):
        call_command("createsender", "x@example.org", "--password-file", missing)

    assert not User.objects.exists()
