from django.test import Client
from django.urls import reverse

CHANGE = reverse("accounts:password_change")
NEW_PASSWORD = "a brand new passphrase 42"


def test_password_change_needs_a_login(client, sender):
    response = client.get(CHANGE)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={CHANGE}"


def test_wrong_old_password_changes_nothing(sender_client, sender, password):
    response = sender_client.post(
        CHANGE,
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in response.text
    sender.refresh_from_db()
    assert sender.check_password(password)


def test_changed_password_keeps_the_user_logged_in(sender_client, sender, password):
    response = sender_client.post(
        CHANGE,
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("home"), 302)]
    assert "Your password has been changed." in response.text
    login = Client().post(
        reverse("accounts:login"), {"email": sender.email, "password": NEW_PASSWORD}
    )
    assert login.status_code == 302
