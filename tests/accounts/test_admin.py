from django.test import Client
from django.urls import reverse

from accounts.models import User

LOGIN = reverse("accounts:login")
ADD_USER = reverse("admin:accounts_user_add")


def new_sender_form(password, **changes):
    return {
        "email": "New.Sender@Example.org",
        "name": "Nora New",
        "kind": User.Kind.SENDER,
        "language": "de",
        "password1": password,
        "password2": password,
        **changes,
    }


def test_admin_creates_a_sender_who_can_log_in(admin_client, password):
    form = admin_client.get(ADD_USER)
    assert form.status_code == 200
    assert '<select name="language"' in form.text

    response = admin_client.post(ADD_USER, new_sender_form(password))

    sender = User.objects.get(email="new.sender@example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[sender.pk])
    assert (sender.name, sender.kind, sender.language, sender.is_staff) == (
        "Nora New",
        User.Kind.SENDER,
        "de",
        False,
    )
    login = Client().post(LOGIN, {"email": "new.sender@example.org", "password": password})
    assert login.status_code == 302
    assert login["Location"] == reverse("home")


def test_admin_add_form_refuses_a_taken_address_and_a_weak_password(admin_client, sender, password):
    taken = admin_client.post(ADD_USER, new_sender_form(password, email="SENDER@example.org"))
    weak = admin_client.post(ADD_USER, new_sender_form("12345", email="weak@example.org"))

    assert taken.status_code == weak.status_code == 200
    assert "An account with this address exists already." in taken.text
    assert "This password is too short." in weak.text
    assert User.objects.count() == 2


def test_admin_login_goes_through_the_throttled_login(client, sender, password):
    page = client.get(reverse("admin:login"), {"next": "/admin/accounts/user/"})
    posted = client.post(reverse("admin:login"), {"username": sender.email, "password": password})
    anonymous = client.get(reverse("admin:index"), follow=True)

    assert page.status_code == 302
    assert page["Location"] == f"{LOGIN}?next=/admin/accounts/user/"
    assert posted.status_code == 302
    assert "_auth_user_id" not in client.session
    assert anonymous.redirect_chain[-1] == (f"{LOGIN}?next=/admin/", 302)
    assert 'name="email"' in anonymous.text


def test_a_sender_without_admin_rights_is_refused(sender_client):
    assert sender_client.get(reverse("admin:login")).status_code == 403
    assert sender_client.get(reverse("admin:index"), follow=True).status_code == 403


def test_an_admin_logs_in_to_the_administration(client, admin_user, password):
    response = client.post(
        f"{LOGIN}?next=/admin/",
        {"email": admin_user.email, "password": password, "next": "/admin/"},
    )

    assert response["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "SecuShare administration" in index.text
