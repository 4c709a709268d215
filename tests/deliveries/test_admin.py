"""Deliveries in the admin: read-only rows, storage use, untouchable audit events."""

import pytest
from django.core import mail
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from accounts.models import User
from deliveries import audit
from deliveries.admin import DeliveryAdmin
from deliveries.models import AuditEvent, Delivery, DeliveryFile, KeyEntry
from secupass import sxf

CHANGELIST = "admin:deliveries_delivery_changelist"


@pytest.fixture
def event(make_delivery):
    made = make_delivery(files={"a.txt": b"a"})
    return audit.record(
        AuditEvent.Kind.DOWNLOADED,
        recipient=made.recipients["rita@example.org"],
        file="a.txt",
        bytes=1,
    )


def test_superuser_cannot_change_or_delete_audit_events(admin_client, event):
    change = reverse("admin:deliveries_auditevent_change", args=[event.pk])
    delete = reverse("admin:deliveries_auditevent_delete", args=[event.pk])

    page = admin_client.get(change)
    assert page.status_code == 200  # shown, read-only
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(change, {"kind": "revoked", "detail": "{}"}).status_code == 403
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:deliveries_auditevent_add")).status_code == 403
    bulk = admin_client.post(
        reverse("admin:deliveries_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code == 200  # the action is not offered
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.kind == "downloaded" and stored.detail == {"file": "a.txt", "bytes": 1}


def test_delivery_list_shows_storage_per_delivery_and_per_sender(
    admin_client, make_delivery, sender, password
):
    big = make_delivery(files={"big.bin": b"b" * 300_000}, subject="Big one")
    small = make_delivery(files={"s1.txt": b"s" * 1000, "s2.txt": b"t" * 2000}, subject="Small")
    olga = User.objects.create_user("olga@example.org", password)
    make_delivery(files={"o.txt": b"o" * 5000}, subject="Olga's", owner=olga)
    gone = make_delivery(files={"gone.txt": b"g" * 70_000}, subject="Purged")
    Delivery.objects.filter(pk=gone.delivery.pk).update(
        status=Delivery.Status.EXPIRED, blobs_deleted_at=big.delivery.created_at
    )

    def stored(made):
        return sum(f.blob_size for f in made.files.values())

    html = admin_client.get(reverse(CHANGELIST)).content.decode()

    assert filesizeformat(stored(big)) in html
    assert filesizeformat(stored(small)) in html
    assert f"{stored(small)} bytes" in html  # exact figure in the cell's title
    sender_total = stored(big) + stored(small)  # the purged delivery holds nothing
    assert html.count(filesizeformat(sender_total)) == 3  # each of the sender's rows
    assert filesizeformat(sender_total + stored(gone)) not in html
    assert "Olga" in html and filesizeformat(sxf.blob_length(5000)) in html
    # Sorting by storage use works on the annotation.
    column = ["action_checkbox", *DeliveryAdmin.list_display].index("storage")
    by_size = admin_client.get(reverse(CHANGELIST), {"o": f"-{column}"}).content.decode()
    assert by_size.index("Big one") < by_size.index("Small")


def test_delivery_page_is_read_only_and_hides_wrapped_keys(admin_client, make_delivery):
    made = make_delivery(files={"report.pdf": b"r" * 100})
    entry = KeyEntry.objects.get(delivery=made.delivery)
    change = reverse("admin:deliveries_delivery_change", args=[made.delivery.pk])

    html = admin_client.get(change).content.decode()

    assert "report.pdf" in html and "rita@example.org" in html
    assert entry.key_ref in html
    assert entry.data["ct"] not in html and entry.data["nonce"] not in html
    assert 'name="_save"' not in html
    response = admin_client.post(change, {"subject": "Changed"})
    assert response.status_code == 403
    made.delivery.refresh_from_db()
    assert made.delivery.subject == "Quarterly figures"
    delete = reverse("admin:deliveries_delivery_delete", args=[made.delivery.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Delivery.objects.filter(pk=made.delivery.pk).exists()


def test_recipient_and_file_lists_are_shown_read_only(admin_client, make_delivery):
    made = make_delivery(files={"report.pdf": b"r"})
    f = made.files["report.pdf"]

    recipients = admin_client.get(reverse("admin:deliveries_recipient_changelist"))
    files = admin_client.get(reverse("admin:deliveries_deliveryfile_changelist"))

    assert "rita@example.org" in recipients.content.decode()
    assert "report.pdf" in files.content.decode()
    change = reverse("admin:deliveries_deliveryfile_change", args=[f.pk])
    assert admin_client.post(change, {"name": "evil.exe"}).status_code == 403
    assert DeliveryFile.objects.get(pk=f.pk).name == "report.pdf"


def test_admin_revokes_through_the_workflow(
    admin_client, make_delivery, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    made = make_delivery(files={"a.txt": b"a"})

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "revoke", "_selected_action": [str(made.delivery.pk)]},
            follow=True,
        )

    assert "1 delivery was revoked." in response.content.decode()
    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.REVOKED
    assert [m.to for m in mail.outbox] == [["rita@example.org"]]
    assert AuditEvent.objects.filter(
        delivery=made.delivery, kind="revoked", actor__email="admin@example.org"
    ).exists()
