"""The sender's side after sending: sent list, status page, revoke, extend, home page."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone, translation

from accounts.models import User
from deliveries import audit
from deliveries.models import AuditEvent, Delivery, Recipient, new_token
from deliveries.storage import blob_store

SMALL = {"notes.txt": b"hello"}


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def other_sender(db, password):
    return User.objects.create_user("olga@example.org", password, name="Olga Other")


def states(html: str) -> list[str]:
    return re.findall(r'data-state="(\w+)"', html)


def shown(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def test_sent_list_shows_each_status_newest_first(sender_client, make_delivery):
    now = timezone.now()
    draft = make_delivery(files=SMALL, subject="Draft one", sent=False)
    expired = make_delivery(files=SMALL, subject="Old one")
    Delivery.objects.filter(pk=expired.delivery.pk).update(expires_at=now - timedelta(hours=1))
    revoked = make_delivery(files=SMALL, subject="Withdrawn one")
    Delivery.objects.filter(pk=revoked.delivery.pk).update(
        status=Delivery.Status.REVOKED, revoked_at=now
    )
    made = make_delivery(
        files=SMALL,
        subject="Active one",
        recipients=["a@example.org", "b@example.org", "c@example.org"],
    )
    Recipient.objects.filter(email__in=["a@example.org", "b@example.org"]).update(
        opened_at=now, downloaded_at=now
    )
    for d, minutes in ((made, 0), (revoked, 1), (expired, 2), (draft, 3)):
        Delivery.objects.filter(pk=d.delivery.pk).update(
            created_at=now - timedelta(minutes=minutes)
        )

    response = sender_client.get(reverse("sender:list"))

    assert response.status_code == 200
    html = response.content.decode()
    # Newest first; a sent delivery past its expiry shows as expired before the job runs.
    assert states(html) == ["active", "revoked", "expired", "draft"]
    assert html.index("Active one") < html.index("Withdrawn one") < html.index("Old one")
    assert "2 of 3 downloaded" in html
    assert "not sent yet" in html
    assert reverse("sender:detail", kwargs={"pk": made.delivery.pk}) in html


def test_sent_list_is_paginated(sender_client, sender):
    now = timezone.now()
    for i in range(26):
        d = Delivery.objects.create(
            sender=sender,
            level=1,
            subject=f"Delivery {i:02d}",
            language="en",
            expires_at=now + timedelta(days=3),
        )
        Delivery.objects.filter(pk=d.pk).update(created_at=now - timedelta(minutes=i))

    first = sender_client.get(reverse("sender:list")).content.decode()
    second = sender_client.get(reverse("sender:list"), {"page": 2}).content.decode()

    assert len(states(first)) == 25 and "Delivery 00" in first and "Delivery 25" not in first
    assert states(second) == ["draft"] and "Delivery 25" in second
    assert 'rel="prev"' in second


def test_sent_list_queries_do_not_grow_with_the_deliveries(
    sender_client, sender, django_assert_num_queries
):
    def add(count):
        for i in range(count):
            d = Delivery.objects.create(
                sender=sender,
                level=1,
                subject=f"D{i}",
                language="en",
                expires_at=timezone.now() + timedelta(days=3),
            )
            Recipient.objects.create(
                delivery=d, email=f"r{i}@example.org", token_hash=new_token()[1]
            )

    add(2)
    sender_client.get(reverse("sender:list"))  # session and user are loaded once
    with CaptureQueriesContext(connection) as few:
        sender_client.get(reverse("sender:list"))
    add(10)
    with django_assert_num_queries(len(few.captured_queries)):
        response = sender_client.get(reverse("sender:list"))
    assert len(states(response.content.decode())) == 12


def test_sent_list_shows_only_own_deliveries(sender_client, make_delivery, other_sender):
    make_delivery(files=SMALL, subject="Mine")
    make_delivery(files=SMALL, subject="Someone else's", owner=other_sender)

    html = sender_client.get(reverse("sender:list")).content.decode()

    assert "Mine" in html and "Someone else" not in html


def test_detail_shows_files_recipient_times_and_history(sender_client, make_delivery):
    made = make_delivery(
        files={"report.pdf": b"x" * 3000, "data.csv": b"1,2"},
        recipients=["rita@example.org", "ron@example.org"],
    )
    rita = made.recipients["rita@example.org"]
    opened = timezone.now() - timedelta(hours=3)
    downloaded = timezone.now() - timedelta(hours=2)
    Recipient.objects.filter(pk=rita.pk).update(
        opened_at=opened, confirmed_at=opened, downloaded_at=downloaded
    )
    audit.record(AuditEvent.Kind.OPENED, recipient=rita)
    report = made.files["report.pdf"]
    audit.record(
        AuditEvent.Kind.DOWNLOADED, recipient=rita, file=str(report.id), size=3000, bytes=3000
    )

    response = sender_client.get(reverse("sender:detail", kwargs={"pk": made.delivery.pk}))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-state="active"' in html
    assert "report.pdf" in html and "data.csv" in html and "2.9\xa0KB" in html
    rita_row = html[html.index('data-recipient="rita@example.org"') :]
    rita_row = rita_row[: rita_row.index("</tr>")]
    assert shown(opened) in rita_row and shown(downloaded) in rita_row
    ron_row = html[html.index('data-recipient="ron@example.org"') :]
    ron_row = ron_row[: ron_row.index("</tr>")]
    assert shown(downloaded) not in ron_row and "—" in ron_row
    assert "1 of 2 downloaded" in html
    history = html[html.index('class="list events"') :]
    assert 'data-event="downloaded"' in history and 'data-event="opened"' in history
    assert "file: report.pdf" in history and "bytes sent: 2.9\xa0KB" in history
    # Actions for an active delivery.
    assert reverse("sender:revoke", kwargs={"pk": made.delivery.pk}) in html
    assert reverse("sender:extend", kwargs={"pk": made.delivery.pk}) in html


def test_revoking_a_delivery_tells_the_recipients(
    sender_client, make_delivery, eager, django_capture_on_commit_callbacks
):
    made = make_delivery(files=SMALL, recipients=["rita@example.org", "ron@example.org"])
    url = reverse("sender:revoke", kwargs={"pk": made.delivery.pk})

    with django_capture_on_commit_callbacks(execute=True):
        response = sender_client.post(url)

    assert response.status_code == 302
    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.REVOKED and made.delivery.revoked_at
    assert sorted(m.to[0] for m in mail.outbox) == ["rita@example.org", "ron@example.org"]
    assert all("Quarterly figures" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(delivery=made.delivery, kind="revoked", actor__isnull=False)
    page = sender_client.get(response["Location"]).content.decode()
    assert 'data-state="revoked"' in page
    assert "The delivery has been revoked" in page
    # Nothing left to change: no forms for it any more.
    assert url not in page
    token = made.tokens["rita@example.org"]
    landing = sender_client.get(reverse("receive:landing", kwargs={"token": token}))
    assert landing.status_code == 410


def test_revoking_twice_changes_nothing(
    sender_client, make_delivery, eager, django_capture_on_commit_callbacks
):
    made = make_delivery(files=SMALL)
    url = reverse("sender:revoke", kwargs={"pk": made.delivery.pk})
    sender_client.post(url)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = sender_client.post(url, follow=True)

    assert "withdrawn already" in response.content.decode()
    assert mail.outbox == []
    assert AuditEvent.objects.filter(delivery=made.delivery, kind="revoked").count() == 1


def test_revoking_one_recipient_keeps_the_others(
    sender_client, make_delivery, eager, django_capture_on_commit_callbacks
):
    made = make_delivery(files=SMALL, recipients=["rita@example.org", "ron@example.org"])
    rita = made.recipients["rita@example.org"]
    url = reverse("sender:revoke_recipient", kwargs={"pk": made.delivery.pk, "rid": rita.pk})

    with django_capture_on_commit_callbacks(execute=True):
        response = sender_client.post(url, follow=True)

    rita.refresh_from_db()
    made.delivery.refresh_from_db()
    assert rita.revoked_at is not None
    assert Recipient.objects.get(email="ron@example.org").revoked_at is None
    assert made.delivery.status == Delivery.Status.SENT
    assert [m.to for m in mail.outbox] == [["rita@example.org"]]
    html = response.content.decode()
    assert "rita@example.org can no longer download" in html
    assert 'data-state="active"' in html
    assert 'data-event="recipient_revoked"' in html
    landing = sender_client.get(
        reverse("receive:landing", kwargs={"token": made.tokens["rita@example.org"]})
    )
    assert landing.status_code == 410


def test_extend_moves_the_expiry_within_the_maximum(sender_client, make_delivery, settings):
    settings.DELIVERY_MAX_DAYS = 30
    made = make_delivery(files=SMALL, expires_at=timezone.now() + timedelta(days=14))
    before = made.delivery.expires_at
    url = reverse("sender:extend", kwargs={"pk": made.delivery.pk})

    response = sender_client.post(url, {"days": 10}, follow=True)

    made.delivery.refresh_from_db()
    assert made.delivery.expires_at == before + timedelta(days=10)
    assert "The delivery is now available until" in response.content.decode()
    assert AuditEvent.objects.filter(delivery=made.delivery, kind="extended").count() == 1

    # 24 days from now; 10 more would pass the 30-day maximum.
    response = sender_client.post(url, {"days": 10})
    assert response.status_code == 400
    assert "at most 30 days" in response.content.decode()
    made.delivery.refresh_from_db()
    assert made.delivery.expires_at == before + timedelta(days=10)


@pytest.mark.parametrize("days", ["0", "-3", "ten", ""])
def test_extend_refuses_bad_numbers(sender_client, make_delivery, days):
    made = make_delivery(files=SMALL)
    before = made.delivery.expires_at

    response = sender_client.post(
        reverse("sender:extend", kwargs={"pk": made.delivery.pk}), {"days": days}
    )

    assert response.status_code == 400
    assert 'class="field-errors"' in response.content.decode()
    made.delivery.refresh_from_db()
    assert made.delivery.expires_at == before


def test_expired_delivery_cannot_be_extended_or_revoked(sender_client, make_delivery):
    made = make_delivery(files=SMALL)
    past = timezone.now() - timedelta(minutes=5)
    Delivery.objects.filter(pk=made.delivery.pk).update(expires_at=past)
    rita = made.recipients["rita@example.org"]
    kwargs = {"pk": made.delivery.pk}

    for url, data in (
        (reverse("sender:extend", kwargs=kwargs), {"days": 3}),
        (reverse("sender:revoke", kwargs=kwargs), {}),
        (reverse("sender:revoke_recipient", kwargs={**kwargs, "rid": rita.pk}), {}),
    ):
        response = sender_client.post(url, data, follow=True)
        assert response.status_code == 200
        assert 'class="message error"' in response.content.decode()

    made.delivery.refresh_from_db()
    rita.refresh_from_db()
    assert made.delivery.expires_at == past
    assert made.delivery.status == Delivery.Status.SENT and rita.revoked_at is None


def test_an_unsent_delivery_can_be_deleted_with_its_blobs(sender_client, make_delivery):
    made = make_delivery(files=SMALL, sent=False)
    blob = blob_store().path(made.files["notes.txt"].storage_name)
    assert blob.exists()

    response = sender_client.post(
        reverse("sender:delete_draft", kwargs={"pk": made.delivery.pk}), follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("sender:list")
    assert "have been deleted" in response.content.decode()
    assert not Delivery.objects.filter(pk=made.delivery.pk).exists()
    assert not blob.exists()


def test_a_sent_delivery_cannot_be_deleted(sender_client, make_delivery):
    made = make_delivery(files=SMALL)

    response = sender_client.post(
        reverse("sender:delete_draft", kwargs={"pk": made.delivery.pk}), follow=True
    )

    assert 'class="message error"' in response.content.decode()
    assert Delivery.objects.filter(pk=made.delivery.pk, status=Delivery.Status.SENT).exists()


def test_actions_need_post(sender_client, make_delivery):
    made = make_delivery(files=SMALL)

    response = sender_client.get(reverse("sender:revoke", kwargs={"pk": made.delivery.pk}))

    assert response.status_code == 405
    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.SENT


def sent_routes(made):
    """Every sent route of ``made``: (method, url, data)."""
    kwargs = {"pk": made.delivery.pk}
    rid = next(iter(made.recipients.values())).pk
    return [
        ("get", reverse("sender:detail", kwargs=kwargs), {}),
        ("post", reverse("sender:revoke", kwargs=kwargs), {}),
        ("post", reverse("sender:revoke_recipient", kwargs={**kwargs, "rid": rid}), {}),
        ("post", reverse("sender:extend", kwargs=kwargs), {"days": 1}),
        ("post", reverse("sender:delete_draft", kwargs=kwargs), {}),
    ]


def test_another_sender_gets_404_on_every_sent_route(client, make_delivery, other_sender):
    made = make_delivery(files=SMALL)
    before = made.delivery.expires_at
    client.force_login(other_sender)

    for method, url, data in sent_routes(made):
        assert getattr(client, method)(url, data).status_code == 404, url

    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.SENT and made.delivery.expires_at == before
    assert not Recipient.objects.filter(revoked_at__isnull=False).exists()


def test_recipient_of_another_delivery_is_404(sender_client, make_delivery):
    first = make_delivery(files=SMALL)
    second = make_delivery(files=SMALL, recipients=["sue@example.org"])
    sue = second.recipients["sue@example.org"]

    response = sender_client.post(
        reverse("sender:revoke_recipient", kwargs={"pk": first.delivery.pk, "rid": sue.pk})
    )

    assert response.status_code == 404
    sue.refresh_from_db()
    assert sue.revoked_at is None


def test_guests_have_no_sent_pages(client, make_delivery, password):
    made = make_delivery(files=SMALL)
    guest = User.objects.create_guest("rita@example.org", password)
    client.force_login(guest)

    assert client.get(reverse("sender:list")).status_code == 404
    for method, url, data in sent_routes(made):
        assert getattr(client, method)(url, data).status_code == 404, url


def test_anonymous_clients_get_404_with_a_way_to_log_in(client, make_delivery):
    made = make_delivery(files=SMALL)
    login = reverse("accounts:login")

    response = client.get(reverse("sender:list"))
    assert response.status_code == 302 and response["Location"].startswith(login)
    for method, url, data in sent_routes(made):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, url
        assert f'href="{login}?next=' in response.content.decode()
    detail = reverse("sender:detail", kwargs={"pk": made.delivery.pk})
    assert f'href="{login}?next={detail}"' in client.get(detail).content.decode()

    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.SENT


def test_home_page_for_a_sender(sender_client, make_delivery):
    make_delivery(files=SMALL, subject="Contract draft")

    html = sender_client.get(reverse("home")).content.decode()

    assert 'href="/send/"' in html
    assert 'href="/sent/"' in html
    assert "Contract draft" in html and 'data-state="active"' in html


def test_home_page_for_a_guest(db, client, password):
    guest = User.objects.create_guest("gina@example.org", password)
    client.force_login(guest)

    html = client.get(reverse("home")).content.decode()

    assert 'href="/received/"' in html
    assert 'href="/send/"' not in html and 'href="/sent/"' not in html


def test_sent_pages_render_in_german(sender_client, make_delivery):
    made = make_delivery(files=SMALL)
    made.delivery.refresh_from_db()
    with translation.override("de"):
        created = formats.date_format(
            timezone.localtime(made.delivery.created_at), "SHORT_DATETIME_FORMAT"
        )

    for url in (
        reverse("home"),
        reverse("sender:list"),
        reverse("sender:detail", kwargs={"pk": made.delivery.pk}),
    ):
        response = sender_client.get(url, HTTP_ACCEPT_LANGUAGE="de")
        html = response.content.decode()
        assert response.status_code == 200 and '<html lang="de">' in html, url
        assert created in html, url
