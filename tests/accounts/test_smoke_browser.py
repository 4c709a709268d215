import pytest


@pytest.mark.browser
def test_setup_page_in_browser(page, db):
    page.goto("/")
    assert page.locator("h1").inner_text() == "Welcome to SecuShare"
