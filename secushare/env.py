"""Strict readers for configuration from environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable and the value it
did not understand, so a typo stops the start-up with a clear message instead of
silently falling back to a default.  ``NAME_FILE`` variants read a secret from a
file (Docker secrets); the file wins over the plain variable only when the plain
variable is unset, and setting both is an error.
"""

import contextlib
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if value is not None and path is not None:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if path is not None:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path!r}: {e.strerror}") from e
        if not secret:
            raise ImproperlyConfigured(f"{name}_FILE: {path!r} is empty.")
        return secret
    return value


def string(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    if value is None or value == "":
        return default
    return value


def boolean(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def integer(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {number}.")
    return number


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None or value == "":
        return default
    if value not in choices:
        allowed = ", ".join(choices)
        raise ImproperlyConfigured(f"{name} must be one of {allowed}, not {value!r}.")
    return value


def url(
    name: str, default: str | None, schemes: tuple[str, ...], host_required: bool = True
) -> str | None:
    """A URL with one of ``schemes``; without ``host_required`` a path is enough
    (``sqlite:////srv/db.sqlite3``, ``unix:///run/redis.sock``)."""
    from urllib.parse import urlsplit

    value = string(name, default)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    where = parts and (parts.netloc if host_required else parts.netloc or parts.path.strip("/"))
    if not parts or parts.scheme not in schemes or not where:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}, not {value!r}.")
    return value


def _secret_file(path: Path, make) -> str:
    """The secret kept in ``path``; on first use ``make()`` is written there, mode 0600.

    The file appears whole or not at all (written aside, then linked into place), so
    two processes starting together agree on one secret and never read half of it.
    """
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(make() + "\n")
            f.flush()
            os.fsync(f.fileno())
        # If another process won the race, its secret is the one.
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip()


def generated_secret(path: Path, nbytes: int = 48) -> str:
    """Return the secret kept in ``path``, creating it once with mode 0600."""
    return _secret_file(path, lambda: secrets.token_urlsafe(nbytes))


def generated_master_key(path: Path) -> str:
    """The embedded default's master key: made once into ``path`` with mode 0600."""
    import base64

    def make():
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        return f"{secrets.token_hex(4)}:{key}"

    return _secret_file(path, make)


def master_keys(name: str, spec: str) -> dict[str, bytes]:
    """Parse ``id:base64url,id:base64url``; the first entry is the current key."""
    import base64
    import binascii
    import re

    keys: dict[str, bytes] = {}
    for part in spec.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", kid):
            raise ImproperlyConfigured(
                f"{name}: each key must look like ID:BASE64URL, with an ID of letters, digits, "
                "- or _ (at most 32)."
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{name}: key {kid!r} is not base64url.") from None
        if len(key) != 32:
            raise ImproperlyConfigured(f"{name}: key {kid!r} must be 32 bytes, not {len(key)}.")
        if kid in keys:
            raise ImproperlyConfigured(f"{name}: key id {kid!r} appears twice.")
        keys[kid] = key
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key.")
    return keys
