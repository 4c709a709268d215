import json
import re

import pytest
from django.urls import reverse

from accounts.models import User

URL = "/send/"


def test_compose_url_is_named():
    assert reverse("sender:compose") == URL


def test_sender_sees_the_form_with_levels_and_defaults(sender_client, settings):
    settings.DELIVERY_DEFAULT_DAYS = 10
    settings.DELIVERY_MAX_DAYS = 30
    response = sender_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("recipients", "subject", "message", "download_limit", "notify_on_download"):
        assert f'name="{name}"' in html
    assert re.search(r'name="expires_in_days"[^>]*max="30"[^>]*value="10"', html)
    # Levels 1 and 2 can be chosen (1 is the default); 3 and 4 are shown but disabled.
    radios = {
        re.search(r'value="(\d)"', tag).group(1): tag
        for tag in re.findall(r'<input type="radio" name="level"[^>]*>', html)
    }
    assert sorted(radios) == ["1", "2", "3", "4"]
    assert "checked" in radios["1"] and "checked" not in radios["2"]
    # Every level can be chosen; levels 3 and 4 lead a sender without a key to make one.
    assert not any("disabled" in radio for radio in radios.values())
    assert "never encrypted" in html
    assert "<noscript>" in html and "JavaScript" in html
    assert 'type="file"' in html and "multiple" in html


def test_mail_language_defaults_to_the_senders(client, password, db):
    user = User.objects.create_user("greta@example.org", password, language="de")
    client.force_login(user)
    html = client.get(URL).content.decode()
    assert re.search(r'<option value="de" selected>', html)
    assert not re.search(r'<option value="en" selected>', html)


def test_configuration_for_the_script(sender_client, settings):
    settings.MAX_FILE_SIZE = 5000
    settings.TUS_MAX_CHUNK = 1024 * 1024
    response = sender_client.get(URL)
    config = json.loads(
        re.search(
            r'<script id="compose-config" type="application/json">(.*?)</script>',
            response.content.decode(),
            re.S,
        ).group(1)
    )
    assert config["api"] == "/api/v1/deliveries"
    assert config["uploads"] == "/api/v1/uploads/"
    assert config["maxFileSize"] == 5000
    assert config["batchBytes"] == 1024 * 1024  # never more than one PATCH may carry
    assert config["sentUrl"] == "/sent/{id}/"
    assert config["strings"]["noFiles"]


def test_only_same_origin_module_scripts_and_no_inline_code(sender_client):
    response = sender_client.get(URL)
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    for attrs, body in scripts:
        if 'type="application/json"' in attrs:
            continue  # data for the script, not code
        assert 'type="module"' in attrs
        src = re.search(r'src="([^"]+)"', attrs).group(1)
        assert src.startswith("/static/js/")
        assert body.strip() == ""
    assert "/static/js/compose.js" in html
    assert "style=" not in html and "<style" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    assert "script-src 'self'" in response["Content-Security-Policy"]
    # The CSRF token is in the page: its cookie is HttpOnly, so the script reads it here.
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize("kind", ["guest", "anonymous"])
def test_guests_and_anonymous_cannot_compose(client, password, sender, kind):
    if kind == "guest":
        guest = User.objects.create_guest("gary@example.net", password)
        client.force_login(guest)
    response = client.get(URL)
    if kind == "guest":
        assert response.status_code == 403
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_inactive_sender_is_logged_out(client, sender):
    client.force_login(sender)
    User.objects.filter(pk=sender.pk).update(is_active=False)
    assert client.get(URL).status_code == 302
