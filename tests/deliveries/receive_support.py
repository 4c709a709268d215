"""Helpers for the recipient-side tests: open a link, confirm the address, download."""

import hashlib
import re

from django.urls import reverse

from deliveries.models import AuditEvent

PASSWORD = "correct horse battery staple"


def landing(made, email="rita@example.org") -> str:
    return reverse("receive:landing", kwargs={"token": made.tokens[email]})


def page(made, email="rita@example.org") -> str:
    return reverse("receive:delivery", kwargs={"rid": made.recipients[email].pk})


def address_url(made, email="rita@example.org") -> str:
    return reverse("receive:address", kwargs={"rid": made.recipients[email].pk})


def file_url(made, name, email="rita@example.org") -> str:
    rid = made.recipients[email].pk
    return reverse("receive:file", kwargs={"rid": rid, "file_id": made.files[name].pk})


def zip_url(made, email="rita@example.org") -> str:
    return reverse("receive:zip", kwargs={"rid": made.recipients[email].pk})


def open_and_confirm(client, made, email="rita@example.org", typed=None, **extra):
    """What a recipient does at level 1: open the link, type the address."""
    assert client.get(landing(made, email), **extra).status_code in (200, 302)
    response = client.post(address_url(made, email), {"email": typed or email}, **extra)
    assert response.status_code == 302, response.content[:500]
    return response


def body(response) -> bytes:
    """The bytes a client gets. The test client closes a streamed response at its end."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def events(kind, **filters):
    return list(AuditEvent.objects.filter(kind=kind, **filters).order_by("at"))


def six_digit_code(message) -> str:
    return re.search(r"\b(\d{6})\b", message.body).group(1)
