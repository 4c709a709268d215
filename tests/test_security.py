"""Headers and templates that keep a strict Content-Security-Policy working."""

import re
from pathlib import Path

from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
LOGIN = reverse("accounts:login")


def policy(response) -> dict[str, list[str]]:
    directives = (d.split() for d in response.headers["Content-Security-Policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


def test_login_page_has_a_strict_content_security_policy(client, sender):
    response = client.get(LOGIN)
    csp = policy(response)

    assert response.status_code == 200
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]


def test_login_page_has_the_other_security_headers(client, sender):
    response = client.get(LOGIN)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP in development


def test_pages_are_not_cached_and_cookies_stay_away_from_scripts(client, sender, password):
    page = client.get(LOGIN)
    response = client.post(LOGIN, {"email": sender.email, "password": password})

    assert "no-store" in page.headers["Cache-Control"]
    for name in ("sessionid", "csrftoken", "secushare_device"):
        cookie = response.cookies.get(name) or page.cookies.get(name)
        assert cookie["httponly"], name
        assert cookie["samesite"] == "Lax", name


def test_hsts_is_sent_over_https(client, sender, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    response = client.get(LOGIN, secure=True)

    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_error_pages_carry_the_policy_too(client, sender):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert policy(response)["default-src"] == ["'none'"]


def page_templates():
    folders = [ROOT / "templates", *ROOT.glob("*/templates")]
    for folder in folders:
        for path in sorted(folder.rglob("*.html")):
            if "mail" not in path.relative_to(folder).parts[:1]:
                yield path


INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I), "inline script"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event handler attribute"),
    (re.compile(r"""=\s*["']?\s*javascript:""", re.I), "javascript: URL"),
]


def test_page_templates_need_no_inline_script_or_style():
    templates = list(page_templates())
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in templates
        for pattern, what in INLINE
        if pattern.search(path.read_text(encoding="utf-8"))
    ]

    assert ROOT / "templates" / "base.html" in templates
    assert found == []
