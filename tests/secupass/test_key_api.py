"""The key API under /api/v1/keys/: what a browser or the CLI sees when it creates, unlocks,
changes and resets a SecuPass key, and what the server keeps (never a raw pepper)."""

import base64
import json
import os
import secrets

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.tokens import issue_token
from deliveries.models import AuditEvent
from secupass import api, keys, masterkeys, sxf
from secupass.models import MAX_ISSUED, UserKey

SECUPASS = "Quarzsand-Leuchtturm-47"
GUEST_EMAIL = "Gus.Guest@Example.org"

pytestmark = pytest.mark.django_db


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def guest(password):
    return User.objects.create_guest(GUEST_EMAIL, password, email_verified_at=timezone.now())


@pytest.fixture
def guest_client(client, guest):
    client.force_login(guest)
    return client


def url(name, *args):
    return reverse(f"keys_api:{name}", args=args)


def post(client, name, body=None, *args, **extra):
    data = json.dumps(body) if body is not None else ""
    return client.post(url(name, *args), data, content_type="application/json", **extra)


def issue(client):
    response = post(client, "issue")
    assert response.status_code == 201
    return response.json()


def cheap_body(key_id, **changes):
    """A register body of the right shape, sealed under random keys instead of ones derived
    from a SecuPass (the server cannot tell; this skips PBKDF2 where unlocking is not tested)."""
    user_keys = keys.generate_user_keys()
    body = {
        "ecdh_public": sxf.b64u_encode(user_keys.ecdh_public),
        "ecdsa_public": sxf.b64u_encode(user_keys.ecdsa_public),
        "kdf": keys.KDF_NAME,
        "iterations": keys.DEFAULT_ITERATIONS,
        "salt": sxf.b64u_encode(os.urandom(16)),
        "private_record": sxf.b64u_encode(
            keys.seal_private_record(user_keys, os.urandom(32), key_id)
        ),
        "keyring": sxf.b64u_encode(keys.seal_keyring({}, 1, os.urandom(32), key_id)),
    }
    body.update(changes)
    return body


def register_cheap(client, **changes):
    issued = issue(client)
    body = cheap_body(issued["key_id"], **changes)
    response = post(client, "register", body, issued["key_id"])
    assert response.status_code == 201, response.content
    return issued, body, response.json()


def register_real(client, secupass=SECUPASS):
    """What the browser and the CLI do: issue, make keys, seal under the SecuPass, register."""
    issued = issue(client)
    unlocked, body = keys.create_key(secupass, issued["key_id"], issued["pepper"])
    response = post(client, "register", body, issued["key_id"])
    assert response.status_code == 201, response.content
    return issued, unlocked, response.json()


def events(kind):
    return list(AuditEvent.objects.filter(kind=kind).order_by("at"))


# -- creating and unlocking -----------------------------------------------------------------


def test_issue_register_mine_and_unlock_with_the_python_client(guest_client, guest):
    issued, unlocked, registered = register_real(guest_client)

    assert len(sxf.b64u_decode(issued["pepper"])) == 32
    expected = sxf.fingerprint(guest.email, unlocked.keys.ecdh_public, unlocked.keys.ecdsa_public)
    assert registered["key_id"] == issued["key_id"]
    assert registered["fingerprint"] == sxf.format_fingerprint(expected)
    assert registered["fingerprint_hex"] == expected.hex()
    assert registered["replaced"] is None

    mine = guest_client.get(url("mine")).json()
    assert mine["key_id"] == issued["key_id"]
    assert mine["email"] == "gus.guest@example.org"
    assert sxf.b64u_decode(mine["ecdh_public"]) == unlocked.keys.ecdh_public
    assert mine["kdf"] == "pbkdf2-sha256" and mine["iterations"] == 600_000
    assert mine["keyring_version"] == 1

    pepper = post(guest_client, "pepper")
    assert pepper.status_code == 200
    assert pepper.json()["pepper"] == issued["pepper"]
    opened = keys.unlock(SECUPASS, mine, pepper.json()["pepper"])
    assert opened.keys.ecdh_public == unlocked.keys.ecdh_public
    assert keys.open_keyring(
        sxf.b64u_decode(mine["keyring"]), opened.derived.keyring_key, mine["key_id"]
    ) == (1, {})
    with pytest.raises(keys.WrongSecuPass):
        keys.unlock(SECUPASS + "!", mine, pepper.json()["pepper"])

    [created] = events("key_created")
    assert created.actor == guest
    assert created.detail == {"key_id": issued["key_id"], "fingerprint": registered["fingerprint"]}
    [unlocked_event] = events("key_unlocked")
    assert unlocked_event.actor == guest and unlocked_event.address == "127.0.0.1"


def test_the_database_holds_no_raw_pepper(guest_client):
    issued, _body, _registered = register_cheap(guest_client)
    pepper = sxf.b64u_decode(issued["pepper"])
    forms = [
        pepper,
        issued["pepper"].encode(),
        pepper.hex().encode(),
        base64.b64encode(pepper).rstrip(b"="),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM secupass_userkey")
        rows = cursor.fetchall()
    assert len(rows) == 1
    for value in rows[0]:
        if value is None:
            continue
        stored = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        assert not any(form in stored for form in forms)
    # What is stored opens only with the master key, to the same pepper.
    key = UserKey.objects.get()
    assert key.pepper_kek_id == masterkeys.current_kek_id()
    assert key.pepper_bytes() == pepper


def test_pepper_goes_only_to_the_owner_of_an_active_key(client, guest_client, sender):
    register_cheap(guest_client)
    client.logout()
    assert post(client, "pepper").status_code == 401

    client.force_login(sender)
    response = post(client, "pepper")
    assert response.status_code == 404
    assert "no SecuPass key" in response.json()["error"]
    assert client.get(url("mine")).status_code == 404
    assert events("key_unlocked") == []


def test_pepper_releases_are_throttled_per_user_and_audited(guest_client, guest):
    register_cheap(guest_client)
    for _ in range(api.PEPPER_PER_USER):
        assert post(guest_client, "pepper").status_code == 200

    refused = post(guest_client, "pepper")
    assert refused.status_code == 429
    assert "Too many unlock attempts" in refused.json()["error"]
    assert "pepper" not in refused.json()
    assert refused["Retry-After"] == str(api.PEPPER_WINDOW)
    released = events("key_unlocked")
    assert len(released) == api.PEPPER_PER_USER
    assert {e.actor for e in released} == {guest}


def test_pepper_releases_are_throttled_per_client_address(client):
    users = api.PEPPER_PER_ADDRESS // api.PEPPER_PER_USER + 1
    done = 0
    for i in range(users):
        user = User.objects.create_guest(f"guest{i}@example.org", "x", email_verified_at=None)
        client.force_login(user)
        register_cheap(client)
        while done < api.PEPPER_PER_ADDRESS and done < (i + 1) * api.PEPPER_PER_USER:
            assert post(client, "pepper").status_code == 200
            done += 1
    # The last user has used none of its own budget, but the address has used all of it.
    assert post(client, "pepper").status_code == 429
    assert post(client, "pepper", REMOTE_ADDR="192.0.2.7").status_code == 200


# -- the keyring and the SecuPass change ----------------------------------------------------


def test_keyring_version_must_grow(guest_client):
    issued, _body, _registered = register_cheap(guest_client)
    ring = lambda n: sxf.b64u_encode(  # noqa: E731
        keys.seal_keyring({"a@example.org": "ab" * 32}, n, os.urandom(32), issued["key_id"])
    )
    newer = ring(2)

    def put(body):
        return guest_client.put(url("keyring"), json.dumps(body), content_type="application/json")

    ok = put({"keyring": newer, "version": 2, "key_id": issued["key_id"]})
    assert ok.status_code == 200 and ok.json()["keyring_version"] == 2

    for version in (2, 1):
        stale = put({"keyring": ring(version), "version": version})
        assert stale.status_code == 409
        assert stale.json()["keyring_version"] == 2
        assert "newer" in stale.json()["error"]
    other_key = put({"keyring": ring(3), "version": 3, "key_id": str(UserKey().id)})
    assert other_key.status_code == 409
    bad = put({"keyring": "not base64!", "version": "3"})
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"keyring", "version"}

    mine = guest_client.get(url("mine")).json()
    assert mine["keyring_version"] == 2 and mine["keyring"] == newer


def test_change_secupass_keeps_the_key_and_pepper(guest_client):
    issued, unlocked, registered = register_real(guest_client)
    mine = guest_client.get(url("mine")).json()
    pepper = post(guest_client, "pepper").json()["pepper"]
    new_secupass = "ein ganz anderer Satz 2025"
    body = keys.change_secupass(SECUPASS, new_secupass, mine, pepper)
    stale = dict(body, keyring_version=0)
    assert post(guest_client, "change", stale).status_code == 400

    response = post(guest_client, "change", {**body, "key_id": issued["key_id"]})
    assert response.status_code == 200, response.content
    assert response.json()["fingerprint"] == registered["fingerprint"]

    after = guest_client.get(url("mine")).json()
    assert after["key_id"] == issued["key_id"] and after["ecdh_public"] == mine["ecdh_public"]
    assert after["salt"] != mine["salt"] and after["keyring_version"] == 2
    assert post(guest_client, "pepper").json()["pepper"] == issued["pepper"]
    opened = keys.unlock(new_secupass, after, issued["pepper"])
    assert opened.keys.ecdsa_public == unlocked.keys.ecdsa_public

    # A change based on a keyring older than the stored one is refused.
    older = dict(body, keyring_version=1)
    refused = post(guest_client, "change", older)
    assert refused.status_code == 409 and refused.json()["keyring_version"] == 2


# -- validation -----------------------------------------------------------------------------


def _not_on_curve():
    return sxf.b64u_encode(b"\x04" + bytes(31) + b"\x01" + bytes(32))


def _compressed():
    return sxf.b64u_encode(keys.generate_user_keys().ecdh_public[:33])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"iterations": 599_999}, "iterations"),
        ({"iterations": "600000"}, "iterations"),
        ({"iterations": True}, "iterations"),
        ({"kdf": "argon2id"}, "kdf"),
        ({"ecdh_public": _not_on_curve()}, "ecdh_public"),
        ({"ecdsa_public": _compressed()}, "ecdsa_public"),
        ({"salt": sxf.b64u_encode(bytes(15))}, "salt"),
        ({"salt": "AAAA===="}, "salt"),
        ({"private_record": sxf.b64u_encode(bytes(300))}, "private_record"),
        ({"keyring": ""}, "keyring"),
        ({"keyring_version": 0}, "keyring_version"),
    ],
)
def test_register_refuses_bad_material_and_changes_nothing(guest_client, changes, field):
    issued = issue(guest_client)
    response = post(
        guest_client, "register", cheap_body(issued["key_id"], **changes), issued["key_id"]
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert response.json()["errors"][field][0].endswith(".")
    assert UserKey.objects.get().status == UserKey.Status.ISSUED
    assert guest_client.get(url("mine")).status_code == 404
    assert events("key_created") == []


def test_register_refuses_the_same_key_for_signing_and_encryption(guest_client):
    issued = issue(guest_client)
    body = cheap_body(issued["key_id"])
    body["ecdsa_public"] = body["ecdh_public"]
    response = post(guest_client, "register", body, issued["key_id"])
    assert response.status_code == 400 and "ecdsa_public" in response.json()["errors"]


def test_bad_json_and_methods_get_json_errors(guest_client):
    issued = issue(guest_client)
    response = guest_client.post(
        url("register", issued["key_id"]), "{not json", content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"].endswith(".")
    wrong_method = guest_client.get(url("issue"))
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "POST"


# -- other users, registering twice, reset --------------------------------------------------


def test_keys_of_other_users_are_404(client, guest_client, sender):
    issued = issue(guest_client)
    client.force_login(sender)
    response = post(client, "register", cheap_body(issued["key_id"]), issued["key_id"])
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
    assert UserKey.objects.get().status == UserKey.Status.ISSUED


def test_a_registered_key_cannot_be_registered_again(guest_client):
    issued, body, _ = register_cheap(guest_client)
    again = post(guest_client, "register", cheap_body(issued["key_id"]), issued["key_id"])
    assert again.status_code == 409
    assert "already registered" in again.json()["error"]
    assert guest_client.get(url("mine")).json()["ecdh_public"] == body["ecdh_public"]


def test_reset_retires_the_old_key_and_is_audited(guest_client, guest):
    first, _body, first_registered = register_cheap(guest_client)
    second, _body, registered = register_cheap(guest_client)

    assert registered["replaced"] == first["key_id"]
    assert registered["fingerprint"] != first_registered["fingerprint"]
    old = UserKey.objects.get(pk=first["key_id"])
    assert old.status == UserKey.Status.RETIRED and old.retired_at
    # Nothing secret of the old key is kept; its public keys stay for old signatures.
    assert old.pepper is None and old.private_record is None and old.keyring is None
    assert len(old.ecdh_public_bytes) == 65
    mine = guest_client.get(url("mine")).json()
    assert mine["key_id"] == second["key_id"] and mine["keyring_version"] == 1
    assert post(guest_client, "pepper").json()["pepper"] == second["pepper"]

    [reset] = events("key_reset")
    assert reset.actor == guest
    assert reset.detail == {
        "key_id": second["key_id"],
        "old_key_id": first["key_id"],
        "fingerprint": registered["fingerprint"],
    }
    assert len(events("key_created")) == 1
    assert UserKey.objects.active().filter(user=guest).count() == 1


def test_only_a_few_issued_keys_are_kept(guest_client):
    issued = [issue(guest_client)["key_id"] for _ in range(MAX_ISSUED + 2)]
    assert UserKey.objects.filter(status=UserKey.Status.ISSUED).count() == MAX_ISSUED
    oldest = post(guest_client, "register", cheap_body(issued[0]), issued[0])
    assert oldest.status_code == 404
    newest = post(guest_client, "register", cheap_body(issued[-1]), issued[-1])
    assert newest.status_code == 201


# -- public keys: lookup and by id ----------------------------------------------------------


def test_lookup_is_for_senders_and_shows_only_public_values(client, guest_client, sender):
    _issued, body, registered = register_cheap(guest_client)
    denied = guest_client.get(url("lookup"), {"email": GUEST_EMAIL})
    assert denied.status_code == 403

    client.force_login(sender)
    token = issue_token(sender, "cli")[1]
    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    found = client.get(url("lookup"), {"email": "GUS.GUEST@example.org"}, **auth)
    assert found.status_code == 200
    data = found.json()
    assert data["email"] == "gus.guest@example.org"
    assert data["ecdh_public"] == body["ecdh_public"]
    assert data["fingerprint"] == registered["fingerprint"]
    assert not {"private_record", "pepper", "keyring", "salt"} & set(data)

    missing = client.get(url("lookup"), {"email": "nobody@example.org"}, **auth)
    assert missing.status_code == 404 and missing.json()["error"].endswith(".")
    assert client.get(url("lookup"), **auth).status_code == 400


def test_public_key_by_id_is_shown_to_whom_it_concerns(client, guest_client, guest, sender):
    guest_key, _body, _ = register_cheap(guest_client)
    client.force_login(sender)
    sender_key, _body, _ = register_cheap(client)
    other = User.objects.create_guest("other@example.org", "x")

    # A sender sees any registered key; a guest their own and senders' keys.
    assert client.get(url("user", guest_key["key_id"])).status_code == 200
    client.force_login(guest)
    seen = client.get(url("user", sender_key["key_id"]))
    assert seen.status_code == 200 and seen.json()["email"] == "sender@example.org"
    assert not {"private_record", "pepper", "keyring"} & set(seen.json())
    assert client.get(url("user", guest_key["key_id"])).status_code == 200
    client.force_login(other)
    assert client.get(url("user", guest_key["key_id"])).status_code == 404
    # An issued, unregistered key has no public keys yet.
    client.force_login(sender)
    pending = issue(client)
    assert client.get(url("user", pending["key_id"])).status_code == 404


# -- the login-password check of the key page -----------------------------------------------


def test_check_password_answers_only_yes_or_no_and_is_throttled(guest_client, password, settings):
    assert post(guest_client, "check_password", {"password": password}).json() == {"ok": True}
    wrong = post(guest_client, "check_password", {"password": "guess"})
    assert wrong.status_code == 200 and wrong.json()["ok"] is False
    for _ in range(settings.LOGIN_FAILURES_PER_ACCOUNT - 1):
        post(guest_client, "check_password", {"password": "guess"})
    blocked = post(guest_client, "check_password", {"password": password})
    assert blocked.status_code == 429
    assert "Too many wrong passwords" in blocked.json()["error"]
    assert post(guest_client, "check_password", {}).status_code == 400


# -- master key rotation --------------------------------------------------------------------


def test_rotating_the_master_key_rewraps_peppers(guest_client, settings, capsys):
    issued, _body, _ = register_cheap(guest_client)
    pending = issue(guest_client)
    old_id = masterkeys.current_kek_id()
    settings.MASTER_KEYS = {"new": secrets.token_bytes(32), old_id: settings.MASTER_KEYS[old_id]}

    call_command("rotate_master_key")

    assert "Re-wrapped 2 SecuPass peppers" in capsys.readouterr().out
    settings.MASTER_KEYS = {"new": settings.MASTER_KEYS["new"]}
    for key_id, pepper in (
        (issued["key_id"], issued["pepper"]),
        (pending["key_id"], pending["pepper"]),
    ):
        key = UserKey.objects.get(pk=key_id)
        assert key.pepper_kek_id == "new" and key.pepper["kek_id"] == "new"
        assert key.pepper_bytes() == sxf.b64u_decode(pepper)
    assert post(guest_client, "pepper").json()["pepper"] == issued["pepper"]


def test_rotation_refuses_when_a_pepper_key_is_missing(guest_client, settings):
    issued, _body, _ = register_cheap(guest_client)
    old_id = masterkeys.current_kek_id()
    settings.MASTER_KEYS = {"new": secrets.token_bytes(32)}
    with pytest.raises(CommandError, match=old_id):
        call_command("rotate_master_key")
    assert UserKey.objects.get(pk=issued["key_id"]).pepper_kek_id == old_id
