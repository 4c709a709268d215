import pytest


@pytest.fixture(autouse=True)
def _static_without_collectstatic(settings, tmp_path):
    # Production's manifest storage needs `collectstatic`; pages under test link the
    # files as they are in static/ (the live server serves them from there).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
