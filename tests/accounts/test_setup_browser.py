import pytest
from playwright.sync_api import expect

from accounts.models import User


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_first_admin_is_created_through_the_setup_page(page, password):
    blocked = []  # what the Content-Security-Policy stopped, as Chromium reports it
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))

    page.goto("/")
    expect(page).to_have_url("/accounts/setup/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to SecuShare")
    page.get_by_label("Your e-mail address").fill("ada@example.org")
    page.get_by_label("Your name").fill("Ada Admin")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password again").fill("not the same")
    page.get_by_role("button", name="Create administrator").click()

    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    assert not User.objects.exists()
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password again").fill(password)
    page.get_by_role("button", name="Create administrator").click()

    expect(page).to_have_url("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ada Admin")
    expect(page.get_by_role("status")).to_contain_text("Your administrator account is ready.")
    assert User.objects.get().is_superuser

    # The administration works under the strict Content-Security-Policy too.
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("link", name="ada@example.org")).to_be_visible()
    assert blocked == []
