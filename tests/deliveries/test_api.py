"""The JSON API under /api/v1/: what a script or the CLI sees."""

import base64
import io
import json
import os
import re
import secrets
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.crypto import get_random_string

from accounts.models import User
from accounts.tokens import issue_token
from deliveries.models import AuditEvent, Delivery, Recipient
from outbox.models import OutgoingMail
from secupass import sxf

DELIVERIES = "/api/v1/deliveries"


class Api:
    """A client that talks JSON with a personal API token."""

    def __init__(self, user=None, token=None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            token = token or issue_token(user, "tests")[1]
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(
            method, path, data, content_type="application/json", headers=self.headers
        )

    def get(self, path):
        return self._call("GET", path)

    def post(self, path, body=None):
        return self._call("POST", path, body if body is not None else {})

    def delete(self, path):
        return self._call("DELETE", path)


@pytest.fixture
def api(sender):
    return Api(sender)


@pytest.fixture
def other_sender(db):
    return User.objects.create_user("other@example.org", "x" * 20, name="Olga Other")


@pytest.fixture
def guest(db):
    return User.objects.create_guest("rita@example.org", "x" * 20, email_verified_at=timezone.now())


def new_delivery(api, **fields):
    body = {
        "level": 1,
        "subject": "Quarterly figures",
        "message": "Here they are.",
        "recipients": ["rita@example.org"],
        **fields,
    }
    response = api.post(DELIVERIES, body)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_with_a_pasted_list_normalises_and_deduplicates(api, sender, settings):
    pasted = (
        '"Doe, Jane" <Jane.Doe@Example.ORG>; bob@example.org,\n'
        "  CAROL@example.org  bob@EXAMPLE.org\r\nDave Smith <dave@example.org>"
    )
    response = api.post(
        DELIVERIES,
        {"level": 2, "subject": "Contract", "recipients": pasted, "download_limit": 3},
    )

    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "draft"
    assert data["upload_url"] == "/api/v1/uploads/"
    assert response["Location"] == f"/api/v1/deliveries/{data['id']}"
    assert sorted(r["email"] for r in data["recipients"]) == [
        "bob@example.org",
        "carol@example.org",
        "dave@example.org",
        "jane.doe@example.org",
    ]
    assert {r["status"] for r in data["recipients"]} == {"draft"}
    delivery = Delivery.objects.get(pk=data["id"])
    assert delivery.sender == sender
    assert delivery.level == 2
    assert delivery.download_limit == 3
    assert delivery.language == sender.language
    expected = timezone.now() + timedelta(days=settings.DELIVERY_DEFAULT_DAYS)
    assert abs((delivery.expires_at - expected).total_seconds()) < 60
    event = AuditEvent.objects.get(delivery=delivery)
    assert event.kind == AuditEvent.Kind.CREATED
    assert event.actor == sender


def test_invalid_fields_each_get_a_sentence_and_nothing_is_created(api, settings):
    settings.DELIVERY_MAX_DAYS = 30
    response = api.post(
        DELIVERIES,
        {
            "level": 7,
            "subject": "",
            "recipients": "rita@example.org, not-an-address; bob@",
            "expires_in_days": 31,
            "download_limit": 0,
            "language": "fr",
        },
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {
        "level",
        "subject",
        "recipients",
        "expires_in_days",
        "download_limit",
        "language",
    }
    assert errors["recipients"] == [
        "“not-an-address” is not a valid e-mail address.",
        "“bob@” is not a valid e-mail address.",
    ]
    assert errors["subject"] == ["Enter a subject."]
    assert errors["expires_in_days"] == ["A delivery can be kept for at most 30 days."]
    assert not Delivery.objects.exists()


def test_levels_three_and_four_need_the_senders_secupass_key(api):
    for level in (3, 4):
        response = api.post(
            DELIVERIES, {"level": level, "subject": "S", "recipients": ["a@example.org"]}
        )
        assert response.status_code == 400
        assert "SecuPass key" in response.json()["errors"]["level"][0]
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"level": 1, "subject": "S", "recipients": "a@example.org", "colour": 1}', "colour"),
    ],
)
def test_malformed_bodies_are_explained(api, body, message):
    response = api.client.post(
        DELIVERIES, body, content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Delivery.objects.exists()


def test_too_many_recipients(api, settings):
    settings.MAX_RECIPIENTS = 2
    response = api.post(
        DELIVERIES,
        {"level": 1, "subject": "S", "recipients": "a@example.org b@example.org c@example.org"},
    )
    assert response.status_code == 400
    assert response.json()["errors"]["recipients"] == ["A delivery can go to at most 2 recipients."]


def test_send_wraps_the_key_and_queues_one_mail_per_recipient(api, make_delivery, sender):
    made = make_delivery(level=2, recipients=["rita@example.org", "sam@example.org"], sent=False)
    key = sxf.b64u_encode(made.key)

    response = api.post(f"{DELIVERIES}/{made.delivery.id}/send", {"delivery_key": key})

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "sent"
    assert {r["status"] for r in data["recipients"]} == {"mail_sent"}
    assert [f["state"] for f in data["files"]] == ["verified"]
    mails = OutgoingMail.objects.filter(template="delivery_new")
    assert sorted(m.to for m in mails) == ["rita@example.org", "sam@example.org"]
    assert AuditEvent.objects.filter(delivery=made.delivery, kind="sent").count() == 1

    again = api.post(f"{DELIVERIES}/{made.delivery.id}/send", {"delivery_key": key})
    assert again.status_code == 400
    assert again.json()["error"] == "This delivery has been sent already."


def tus_upload(api, delivery_id, key, name, plaintext):
    """Encrypt and upload one file through the tus endpoints, as the CLI does."""
    values = {"delivery": delivery_id, "filename": name, "size": str(len(plaintext))}
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())
    tus = {**api.headers, "Tus-Resumable": "1.0.0"}
    length = sxf.blob_length(len(plaintext))
    created = api.client.generic(
        "POST",
        "/api/v1/uploads/",
        b"",
        headers={**tus, "Upload-Length": str(length), "Upload-Metadata": meta},
    )
    assert created.status_code == 201, created.content
    location = created["Location"]
    file_id = location.rstrip("/").rsplit("/", 1)[-1]
    encryptor = sxf.Encryptor(key, delivery_id, file_id, len(plaintext))
    patched = api.client.generic(
        "PATCH",
        location,
        b"".join(encryptor.encrypt_stream(io.BytesIO(plaintext))),
        content_type="application/offset+octet-stream",
        headers={**tus, "Upload-Offset": "0"},
    )
    assert patched.status_code == 204, patched.content


def test_create_upload_with_tus_and_send(api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    plaintext = os.urandom(200_000)
    key = secrets.token_bytes(32)
    draft = new_delivery(api, recipients="rita@example.org sam@example.org", level=2)

    tus_upload(api, draft["id"], key, "data.bin", plaintext)
    uploaded = api.get(f"{DELIVERIES}/{draft['id']}").json()
    assert [(f["name"], f["size"], f["state"]) for f in uploaded["files"]] == [
        ("data.bin", len(plaintext), "complete")
    ]

    response = api.post(f"{DELIVERIES}/{draft['id']}/send", {"delivery_key": sxf.b64u_encode(key)})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sent"
    assert response.json()["files"][0]["state"] == "verified"
    assert OutgoingMail.objects.filter(template="delivery_new").count() == 2


def test_send_with_a_wrong_or_malformed_key_changes_nothing(api, make_delivery):
    made = make_delivery(level=1, sent=False)
    url = f"{DELIVERIES}/{made.delivery.id}/send"

    for body in ({}, {"delivery_key": "not base64!"}, {"delivery_key": "AAAA"}):
        response = api.post(url, body)
        assert response.status_code == 400
        assert response.json()["error"] == "The delivery key is missing or malformed."
    wrong = api.post(url, {"delivery_key": sxf.b64u_encode(secrets.token_bytes(32))})
    assert wrong.status_code == 400
    assert "arrived damaged" in wrong.json()["error"]

    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.DRAFT
    assert not OutgoingMail.objects.exists()


def test_status_shows_each_recipient(api, make_delivery):
    made = make_delivery(recipients=["a@example.org", "b@example.org", "c@example.org"])
    now = timezone.now()
    Recipient.objects.filter(pk=made.recipients["a@example.org"].pk).update(
        opened_at=now, confirmed_at=now, downloaded_at=now
    )
    Recipient.objects.filter(pk=made.recipients["b@example.org"].pk).update(opened_at=now)

    data = api.get(f"{DELIVERIES}/{made.delivery.id}").json()

    statuses = {r["email"]: r["status"] for r in data["recipients"]}
    assert statuses == {
        "a@example.org": "downloaded",
        "b@example.org": "opened",
        "c@example.org": "mail_sent",
    }
    a = next(r for r in data["recipients"] if r["email"] == "a@example.org")
    assert a["downloaded_at"] == now.isoformat()
    assert data["files"][0]["name"] == "report.pdf"
    assert data["files"][0]["size"] == len(made.plaintexts["report.pdf"])


def test_list_is_newest_first_and_only_the_callers(api, make_delivery, other_sender):
    first = make_delivery(subject="First")
    second = make_delivery(subject="Second")
    make_delivery(subject="Not mine", owner=other_sender)
    Delivery.objects.filter(pk=first.delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )

    data = api.get(DELIVERIES).json()

    assert data["count"] == 2
    assert [d["subject"] for d in data["results"]] == ["Second", "First"]
    assert data["results"][0]["id"] == str(second.delivery.id)
    assert data["results"][0]["recipient_count"] == 1
    page = api.get(f"{DELIVERIES}?limit=1").json()
    assert [d["subject"] for d in page["results"]] == ["Second"]
    assert page["next"] == f"{DELIVERIES}?limit=1&offset=1"


def test_revoke_closes_every_link_and_tells_the_recipients(
    api, client, make_delivery, sender, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    made = make_delivery(recipients=["rita@example.org", "sam@example.org"])

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{DELIVERIES}/{made.delivery.id}/revoke")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert {r["status"] for r in response.json()["recipients"]} == {"revoked"}
    revoked_mails = OutgoingMail.objects.filter(template="delivery_revoked")
    assert sorted(m.to for m in revoked_mails) == ["rita@example.org", "sam@example.org"]
    assert revoked_mails[0].context == {
        "sender_name": "Sam Sender",
        "sender_email": "sender@example.org",
        "subject": "Quarterly figures",
    }
    assert sorted(m.to[0] for m in mail.outbox) == ["rita@example.org", "sam@example.org"]
    assert all("Quarterly figures" in m.body for m in mail.outbox)
    event = AuditEvent.objects.get(delivery=made.delivery, kind=AuditEvent.Kind.REVOKED)
    assert event.actor == sender
    landing = client.get(reverse("receive:landing", args=[made.tokens["rita@example.org"]]))
    assert landing.status_code == 410

    again = api.post(f"{DELIVERIES}/{made.delivery.id}/revoke")
    assert again.status_code == 400
    assert again.json()["error"] == "This delivery has been withdrawn already."
    assert OutgoingMail.objects.filter(template="delivery_revoked").count() == 2


def test_revoke_one_recipient_keeps_the_others(api, make_delivery):
    made = make_delivery(recipients=["rita@example.org", "sam@example.org"])
    rita = made.recipients["rita@example.org"]
    url = f"{DELIVERIES}/{made.delivery.id}/recipients/{rita.id}/revoke"

    response = api.post(url)

    assert response.status_code == 200
    statuses = {r["email"]: r["status"] for r in response.json()["recipients"]}
    assert statuses == {"rita@example.org": "revoked", "sam@example.org": "mail_sent"}
    assert response.json()["status"] == "sent"
    assert [m.to for m in OutgoingMail.objects.filter(template="delivery_revoked")] == [
        "rita@example.org"
    ]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RECIPIENT_REVOKED)
    assert event.recipient == rita
    assert api.post(url).status_code == 400


def test_revoking_a_draft_is_refused(api, make_delivery):
    made = make_delivery(sent=False)
    response = api.post(f"{DELIVERIES}/{made.delivery.id}/revoke")
    assert response.status_code == 400
    assert response.json()["error"] == "This delivery has not been sent yet."


def test_extend_stays_within_the_maximum(api, make_delivery, settings):
    settings.DELIVERY_MAX_DAYS = 30
    made = make_delivery(expires_at=timezone.now() + timedelta(days=10, hours=1))
    url = f"{DELIVERIES}/{made.delivery.id}/extend"

    too_far = api.post(url, {"days": 25})
    assert too_far.status_code == 400
    assert too_far.json()["error"] == (
        "A delivery can be kept for at most 30 days from today, so this one can be "
        "extended by 19 days at most."
    )
    for days in (0, -3, "5", 2.5, True, None):
        response = api.post(url, {"days": days})
        assert response.status_code == 400
        assert "days" in response.json()["errors"]
    made.delivery.refresh_from_db()
    before = made.delivery.expires_at

    response = api.post(url, {"days": 19})

    assert response.status_code == 200
    made.delivery.refresh_from_db()
    assert made.delivery.expires_at == before + timedelta(days=19)
    assert response.json()["expires_at"] == made.delivery.expires_at.isoformat()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.EXTENDED)
    assert event.detail["days"] == 19
    full = api.post(url, {"days": 1})
    assert full.status_code == 400
    assert "cannot be extended further" in full.json()["error"]


def test_extend_is_refused_once_expired_or_revoked(api, make_delivery):
    expired = make_delivery(expires_at=timezone.now() - timedelta(minutes=1))
    response = api.post(f"{DELIVERIES}/{expired.delivery.id}/extend", {"days": 1})
    assert response.status_code == 400
    assert response.json()["error"] == "This delivery has expired."
    assert api.get(f"{DELIVERIES}/{expired.delivery.id}").json()["status"] == "expired"


def test_delete_removes_a_draft_and_its_blobs(api, make_delivery, settings):
    made = make_delivery(sent=False)
    blob = settings.MEDIA_ROOT / made.files["report.pdf"].storage_name
    assert blob.exists()

    response = api.delete(f"{DELIVERIES}/{made.delivery.id}")

    assert response.status_code == 204
    assert not Delivery.objects.filter(pk=made.delivery.pk).exists()
    assert not blob.exists()
    assert api.get(f"{DELIVERIES}/{made.delivery.id}").status_code == 404


def test_a_sent_delivery_cannot_be_deleted(api, make_delivery):
    made = make_delivery()
    response = api.delete(f"{DELIVERIES}/{made.delivery.id}")
    assert response.status_code == 400
    assert "withdraw" in response.json()["error"]
    assert Delivery.objects.filter(pk=made.delivery.pk).exists()


def object_routes(made):
    d, rid = made.delivery.id, made.recipients["rita@example.org"].id
    return [
        ("GET", f"{DELIVERIES}/{d}", None),
        ("DELETE", f"{DELIVERIES}/{d}", None),
        ("POST", f"{DELIVERIES}/{d}/send", {"delivery_key": sxf.b64u_encode(made.key)}),
        ("POST", f"{DELIVERIES}/{d}/revoke", None),
        ("POST", f"{DELIVERIES}/{d}/recipients/{rid}/revoke", None),
        ("POST", f"{DELIVERIES}/{d}/extend", {"days": 1}),
    ]


def test_other_senders_and_guests_get_404_on_every_route(
    make_delivery, other_sender, guest, sender
):
    drafts = make_delivery(sent=False)
    sent = make_delivery()
    outsiders = {"other sender": Api(other_sender)}
    guest_client = Api()
    guest_client.client.force_login(guest)
    outsiders["guest"] = guest_client

    for name, outsider in outsiders.items():
        for made in (drafts, sent):
            for method, path, body in object_routes(made):
                response = outsider._call(method, path, body if body is not None else {})
                assert response.status_code == 404, (name, method, path)
                assert response.json() == {"error": "Not found."}
        assert outsider.get(DELIVERIES).status_code in (200, 403)
        if outsider is guest_client:
            assert outsider.get(DELIVERIES).status_code == 403
        else:
            assert outsider.get(DELIVERIES).json()["count"] == 0

    # A recipient id from another delivery is not found through this one.
    mine = Api(sender)
    foreign = sent.recipients["rita@example.org"].id
    response = mine.post(f"{DELIVERIES}/{drafts.delivery.id}/recipients/{foreign}/revoke")
    assert response.status_code == 404
    assert mine.get(f"{DELIVERIES}/{uuid.uuid4()}").status_code == 404
    for made in (drafts, sent):
        made.delivery.refresh_from_db()
    assert drafts.delivery.status == Delivery.Status.DRAFT
    assert sent.delivery.status == Delivery.Status.SENT
    assert not OutgoingMail.objects.exists()
    assert not AuditEvent.objects.exclude(kind="created").exists()


def test_anonymous_callers_are_asked_to_authenticate(make_delivery):
    made = make_delivery()
    anonymous = Api()
    for method, path, body in [
        ("GET", DELIVERIES, None),
        ("POST", DELIVERIES, {}),
        *object_routes(made),
    ]:
        response = anonymous._call(method, path, body if body is not None else {})
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "Log in or send an API token."}


def test_revoked_token_is_refused(sender):
    row, token = issue_token(sender, "laptop")
    api = Api(token=token)
    assert api.get(DELIVERIES).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None

    row.revoked_at = timezone.now()
    row.save()

    response = api.get(DELIVERIES)
    assert response.status_code == 401
    assert response.json()["error"] == "The API token is invalid or has been revoked."
    assert Api(token="ssk_" + "A" * 43).get(DELIVERIES).status_code == 401


def test_session_requests_need_the_csrf_token(sender, settings):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sender)
    body = json.dumps({"level": 1, "subject": "S", "recipients": "a@example.org"})

    refused = browser.post(DELIVERIES, body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    assert not Delivery.objects.exists()

    csrf = get_random_string(32)  # what the page's form would carry
    browser.cookies[settings.CSRF_COOKIE_NAME] = csrf
    accepted = browser.post(
        DELIVERIES, body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert accepted.status_code == 201
    assert browser.get(DELIVERIES).status_code == 200  # reading needs no CSRF token


def test_wrong_methods_are_405(api):
    response = api._call("PUT", DELIVERIES, {})
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


# deliveries' API, tus, receive, SecuPass keys
DOCUMENTED_NAMESPACES = {"api", "uploads", "receive", "keys_api"}


def api_routes():
    """Every deliveries URL pattern under /api/v1/ as (route, view)."""
    found = []

    def walk(patterns, prefix, namespace):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route, p.namespace or namespace)
            elif route.startswith("api/v1/") and namespace in DOCUMENTED_NAMESPACES:
                found.append(("/" + route, p.callback))

    walk(get_resolver().url_patterns, "", None)
    return found


def openapi_path(route: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_the_openapi_schema_describes_every_route(client, sender):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    routes = api_routes()
    paths = {openapi_path(route) for route, _view in routes}
    assert {
        "/api/v1/deliveries",
        "/api/v1/deliveries/{pk}/recipients/{rid}/revoke",
        "/api/v1/uploads/",
        "/api/v1/uploads/{file_id}",
        "/api/v1/receive",
        "/api/v1/schema",
        "/api/v1/keys/mine/pepper",
        "/api/v1/keys/{key_id}/register",
    } <= paths
    for route, view in routes:
        path = openapi_path(route)
        assert path in schema["paths"], f"{path} is missing from the OpenAPI schema"
        for method in getattr(view, "http_methods", ()):
            assert method.lower() in schema["paths"][path], f"{method} {path} is undocumented"
        for name in re.findall(r"{(\w+)}", path):
            for operation in schema["paths"][path].values():
                params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                assert name in params, f"{path} does not describe {name}"


def test_a_file_added_after_the_check_stops_the_send_and_changes_nothing(
    api, make_delivery, monkeypatch
):
    from deliveries import services
    from deliveries.models import DeliveryFile

    made = make_delivery(sent=False)
    verify = services.verify_files

    def verify_then_a_new_upload_arrives(delivery, key):
        # The race: another tab starts an upload between the blob check and the send.
        verify(delivery, key)
        DeliveryFile.objects.create(
            delivery=delivery, name="late.pdf", size=10, blob_size=106, storage_name="x"
        )

    monkeypatch.setattr(services, "verify_files", verify_then_a_new_upload_arrives)
    response = api.post(
        f"/api/v1/deliveries/{made.delivery.id}/send",
        {"delivery_key": sxf.b64u_encode(made.key)},
    )
    assert response.status_code == 400
    assert "added while sending" in response.json()["error"]
    made.delivery.refresh_from_db()
    assert made.delivery.status == Delivery.Status.DRAFT
    assert not made.delivery.key_entries.exists()
    assert not OutgoingMail.objects.exists()
