"""The German catalogue is complete and is what German-speaking people see.

After new strings are added: `make messages`, translate the new entries in
locale/de/LC_MESSAGES/django.po, then `.venv/bin/python manage.py compiletranslations`.
"""

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")

# %(name)s, %d, %s … ; {name} as filled in by str.format and the JavaScript modules; HTML tags.
PERCENT = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
BRACES = re.compile(r"\{[A-Za-z_]\w*\}")
TAGS = re.compile(r"</?[a-z][^>]*>")
# German pages and mails address people with "Sie", never with "du".
INFORMAL = re.compile(r"\b(du|dich|dir|dein|deine|deinen|deinem|deiner|euch|euer|eure)\b", re.I)


def catalogue():
    return polib.pofile(str(PO))


def pairs(entry):
    """(source, translation) for each form of an entry."""
    if entry.msgid_plural:
        forms = entry.msgstr_plural
        return [(entry.msgid, forms.get(0, "")), (entry.msgid_plural, forms.get(1, ""))]
    return [(entry.msgid, entry.msgstr)]


def markup(text):
    return (
        sorted(PERCENT.findall(text)),
        sorted(BRACES.findall(text)),
        sorted(TAGS.findall(text)),
    )


def test_every_german_entry_is_translated_and_checked():
    po = catalogue()
    assert len(po) > 0
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    empty_forms = [e.msgid for e in po if e.msgid_plural and not all(e.msgstr_plural.values())]
    assert untranslated == []
    assert fuzzy == []
    assert empty_forms == []
    assert po.metadata["Language"] == "de"
    assert po.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"


def test_translations_keep_placeholders_and_markup():
    wrong = [
        (source, text)
        for entry in catalogue()
        for source, text in pairs(entry)
        if text and markup(source) != markup(text)
    ]
    assert wrong == []


def test_translations_keep_the_spacing_that_joins_sentences():
    # Some sentences are joined in code ("… changed. " + "Do not open the files …").
    wrong = [
        source
        for entry in catalogue()
        for source, text in pairs(entry)
        if text
        and (source[:1].isspace(), source[-1:].isspace())
        != (text[:1].isspace(), text[-1:].isspace())
    ]
    assert wrong == []


def test_german_uses_the_formal_address():
    informal = [text for entry in catalogue() for _, text in pairs(entry) if INFORMAL.search(text)]
    assert informal == []


def test_the_compiled_catalogue_is_up_to_date():
    assert MO.exists(), "run: manage.py compiletranslations"
    assert MO.stat().st_mtime >= PO.stat().st_mtime, "run: manage.py compiletranslations"


@pytest.mark.parametrize(
    ("accept", "lang", "heading", "link"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de", "Anmelden", "Passwort vergessen?"),
        ("en-GB,en;q=0.9", "en", "Log in", "Forgot your password?"),
    ],
)
def test_login_page_follows_the_browser_language(client, sender, accept, lang, heading, link):
    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 200
    assert response["Content-Language"] == lang
    page = response.content.decode()
    assert f'<html lang="{lang}">' in page
    assert f"<h1>{heading}</h1>" in page
    assert link in page


@pytest.mark.parametrize("language", ["de", "en"])
def test_password_reset_mail_is_in_the_users_language(
    client, sender, language, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    sender.language = language
    sender.save()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:password_reset"),
            {"email": sender.email},
            HTTP_ACCEPT_LANGUAGE="en" if language == "de" else "de",
        )

    assert response.status_code == 302
    [message] = mail.outbox
    with translation.override(language):
        subject = translation.gettext("Reset your %(site_name)s password") % {
            "site_name": settings.SITE_NAME
        }
        greeting = translation.gettext("Hello %(name)s,") % {"name": sender.name}
    assert message.subject == subject
    assert message.body.startswith(greeting)
    if language == "de":
        assert message.subject == f"Ihr {settings.SITE_NAME}-Passwort zurücksetzen"
        assert "Passwort" in message.body
    else:
        assert message.subject == f"Reset your {settings.SITE_NAME} password"
