import pytest


@pytest.fixture(autouse=True)
def _static_without_collectstatic(settings):
    # The manifest storage of production needs `collectstatic`; admin pages under
    # test link the files as they are.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
