import pytest
from playwright.sync_api import expect


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sender_logs_in_and_switches_the_language(page, sender, password):
    blocked = []  # what the Content-Security-Policy stopped, as Chromium reports it
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))

    page.goto("/")
    expect(page).to_have_url("/accounts/login/?next=/")
    page.get_by_label("E-mail address").fill("Sender@Example.org")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Sam Sender")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_role("button", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page).to_have_url("/")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert blocked == []
