from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed static files once `collectstatic` has run; plain names before.

    `make run` and the Docker image always collect; tests and a first look at a
    fresh checkout render pages without it instead of failing.
    """

    def stored_name(self, name):
        if not self.hashed_files:
            return name
        return super().stored_name(name)
