import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User

SETUP = reverse("accounts:setup")


@pytest.fixture
def admin_form(password):
    return {
        "email": "Ada@Example.org",
        "name": "Ada Admin",
        "password1": password,
        "password2": password,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/"])
def test_without_users_every_page_leads_to_setup(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == SETUP


@pytest.mark.django_db
def test_setup_page_and_health_check_stay_reachable(client):
    assert client.get(SETUP).status_code == 200
    assert client.get("/healthz").content == b"ok"


@pytest.mark.django_db
def test_setup_creates_the_first_administrator_and_logs_in(client, admin_form):
    response = client.post(SETUP, admin_form, follow=True)

    assert response.redirect_chain == [(reverse("home"), 302)]
    assert response.context["user"].email == "ada@example.org"
    assert "Hello, Ada Admin" in response.text
    admin = User.objects.get()
    assert admin.email == "ada@example.org"
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(admin_form["password1"])
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_setup_is_gone_once_an_account_exists(client, admin_form):
    client.post(SETUP, admin_form)
    other = Client()  # another browser, arriving after the setup

    assert other.get(SETUP).status_code == 404
    response = other.post(SETUP, {**admin_form, "email": "mallory@example.org"})
    assert response.status_code == 404
    assert list(User.objects.values_list("email", flat=True)) == ["ada@example.org"]
    assert other.get("/").status_code == 302
    assert other.get("/")["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"password2": "something else entirely"}, "password2", "The two passwords differ."),
        ({"password1": "12345", "password2": "12345"}, "password1", "This password is too short"),
        (
            {"password1": "password123", "password2": "password123"},
            "password1",
            "This password is too common.",
        ),
        ({"email": "not an address"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
    ],
    ids=["passwords-differ", "too-short", "too-common", "bad-email", "no-email"],
)
def test_bad_setup_input_shows_errors_and_creates_nothing(client, admin_form, change, field, error):
    response = client.post(SETUP, {**admin_form, **change})

    assert response.status_code == 200
    assert any(error in message for message in response.context["form"].errors[field])
    assert error in response.text
    assert f'id="id_{field}_error"' in response.text
    assert not User.objects.exists()
    assert "_auth_user_id" not in client.session
