import base64
import secrets

import pytest
from django.core.management import CommandError, call_command

from deliveries.models import KeyEntry
from secupass import masterkeys


def _key():
    return secrets.token_bytes(32)


def test_rotate_rewraps_every_entry_under_the_new_key(make_delivery, settings, capsys):
    made = [make_delivery(), make_delivery()]
    old_id = masterkeys.current_kek_id()
    settings.MASTER_KEYS = {"new": _key(), old_id: settings.MASTER_KEYS[old_id]}

    call_command("rotate_master_key")

    for m in made:
        entry = KeyEntry.objects.get(delivery=m.delivery)
        assert entry.key_ref == "new"
        assert entry.data["kek_id"] == "new"
        assert masterkeys.unwrap(m.delivery.id, entry.data) == m.key
    # Only the new key is needed from now on.
    settings.MASTER_KEYS = {"new": settings.MASTER_KEYS["new"]}
    entry = KeyEntry.objects.get(delivery=made[0].delivery)
    assert masterkeys.unwrap(made[0].delivery.id, entry.data) == made[0].key
    assert old_id in capsys.readouterr().out


def test_rotate_refuses_when_an_old_key_is_missing(make_delivery, settings):
    made = make_delivery()
    old_id = masterkeys.current_kek_id()
    settings.MASTER_KEYS = {"new": _key()}

    with pytest.raises(CommandError, match=old_id):
        call_command("rotate_master_key")
    assert KeyEntry.objects.get(delivery=made.delivery).key_ref == old_id


def test_generate_master_key_prints_a_usable_key(capsys):
    call_command("generate_master_key", "--id", "k2")
    kid, _, encoded = capsys.readouterr().out.strip().partition(":")
    assert kid == "k2"
    assert len(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))) == 32
