import pytest
from django.urls import reverse

from accounts.models import User

LANGUAGE = reverse("accounts:set_language")


def switch(client, language, next_url="/"):
    return client.post(LANGUAGE, {"language": language, "next": next_url})


def test_switching_language_changes_the_pages(client, sender):
    assert client.get(reverse("accounts:login")).headers["Content-Language"] == "en"

    response = switch(client, "de", reverse("accounts:login"))
    page = client.get(reverse("accounts:login"))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert page.headers["Content-Language"] == "de"
    assert '<html lang="de">' in page.text
    assert 'value="en"' in page.text  # the switch now offers English


def test_a_logged_in_user_keeps_the_choice_for_mails(sender_client, sender):
    switch(sender_client, "de")

    sender.refresh_from_db()
    assert sender.language == "de"
    assert '<html lang="de">' in sender_client.get("/").text

    switch(sender_client, "en")

    sender.refresh_from_db()
    assert sender.language == "en"
    assert '<html lang="en">' in sender_client.get("/").text


@pytest.mark.parametrize("language", ["fr", ""])
def test_an_unknown_language_changes_nothing(sender_client, sender, language):
    switch(sender_client, language)

    sender.refresh_from_db()
    assert sender.language == "en"
    assert sender_client.get("/").headers["Content-Language"] == "en"


def test_language_chosen_on_the_setup_page_becomes_the_admins(client, db, password):
    switch(client, "de", reverse("accounts:setup"))

    page = client.get(reverse("accounts:setup"))
    client.post(
        reverse("accounts:setup"),
        {"email": "ada@example.org", "password1": password, "password2": password},
    )

    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert User.objects.get().language == "de"


def test_switching_is_post_only(client, sender):
    client.get(LANGUAGE, {"language": "de", "next": "/accounts/login/"})

    assert client.get(reverse("accounts:login")).headers["Content-Language"] == "en"


def test_an_outside_next_is_not_followed(client, sender):
    response = switch(client, "de", "https://evil.example/")

    assert response["Location"] == "/"
