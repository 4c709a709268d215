"""Reading what a tus client tells us: numbers, ``Upload-Metadata``, file names and types.

Nothing here decides where a blob is stored: storage names come from the ids only
(``storage.blob_name``), so a hostile file name can only ever be a display string.
"""

import base64
import binascii
import re
import unicodedata

from django.utils.text import capfirst
from django.utils.translation import gettext as _

MAX_METADATA = 8192  # bytes of the Upload-Metadata header
MAX_NAME_BYTES = 255  # what file systems allow for one name
MAX_EXTENSION = 20
FALLBACK_NAME = "file"
FALLBACK_TYPE = "application/octet-stream"

_DIGITS = re.compile(r"[0-9]{1,20}")
_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # printable ASCII without space and comma
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_MIME_PART = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MIME = re.compile(rf"{_MIME_PART}/{_MIME_PART}")
# Control, format (bidirectional overrides, zero-width), surrogate, private-use,
# unassigned characters and line/paragraph separators never reach a name.
_DROP = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)


class BadRequest(Exception):
    """Malformed client input; the message says what to fix."""


def parse_count(value: str | None, what: str) -> int:
    """A non-negative decimal integer, or BadRequest naming ``what`` ("the X header")."""
    if value is None:
        raise BadRequest(_("%(what)s is missing.") % {"what": capfirst(what)})
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise BadRequest(
            _("%(what)s must be a whole number of bytes, not “%(value)s”.")
            % {"what": capfirst(what), "value": value[:40]}
        )
    return int(value)


def header_count(request, header: str) -> int:
    return parse_count(request.headers.get(header), _("the %(header)s header") % {"header": header})


def parse_metadata(header: str | None) -> dict[str, bytes]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64value`` pairs (tus 1.0)."""
    if not header or not header.strip():
        return {}
    if len(header) > MAX_METADATA:
        raise BadRequest(_("The Upload-Metadata header is too long."))
    result = {}
    for pair in header.split(","):
        key, _sep, value = pair.strip().partition(" ")
        value = value.strip()
        if not _KEY.fullmatch(key):
            raise BadRequest(
                _("Upload-Metadata must be pairs of “key base64value” separated by commas.")
            )
        if key in result:
            raise BadRequest(_("Upload-Metadata names “%(key)s” twice.") % {"key": key})
        value += "=" * (-len(value) % 4)
        if not _BASE64.fullmatch(value):
            raise BadRequest(
                _("The Upload-Metadata value of “%(key)s” is not Base64.") % {"key": key}
            )
        try:
            result[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(
                _("The Upload-Metadata value of “%(key)s” is not Base64.") % {"key": key}
            ) from None
    return result


def encode_metadata(values: dict[str, str]) -> str:
    """The Upload-Metadata header for HEAD responses."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}"
        for key, value in values.items()
        if value
    )


def text(meta: dict[str, bytes], key: str) -> str | None:
    """A metadata value as text, or None if absent; BadRequest if it is not UTF-8."""
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(_("The “%(key)s” metadata is not UTF-8 text.") % {"key": key}) from None


def _cut_utf8(value: str, limit: int) -> str:
    return value.encode("utf-8")[:limit].decode("utf-8", "ignore")


def clean_filename(raw: str) -> str:
    """A file name safe to show and to save under on any system.

    Keeps the last path component only, drops control and bidirectional-override
    characters, replaces characters Windows forbids, and shortens it to 255 UTF-8
    bytes keeping the extension. An empty result becomes ``file``.
    """
    name = unicodedata.normalize("NFC", raw)
    name = "".join(
        " " if unicodedata.category(c) == "Zs" or c in "\t\r\n" else c
        for c in name
        if c in "\t\r\n" or unicodedata.category(c) not in _DROP
    )
    parts = [p for p in re.split(r"[/\\]", name) if p.strip()]
    name = parts[-1] if parts else ""
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = re.sub(r" {2,}", " ", name).strip().rstrip(". ")
    if not name.strip("."):
        return FALLBACK_NAME
    if _WINDOWS_RESERVED.fullmatch(name):
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem or len(ext) > MAX_EXTENSION or " " in ext:
            stem, ext = name, ""
        ext = f".{ext}" if ext else ""
        name = _cut_utf8(stem, MAX_NAME_BYTES - len(ext.encode("utf-8"))).rstrip(". ") + ext
    return unicodedata.normalize("NFC", name) or FALLBACK_NAME


def clean_content_type(raw: str | None) -> str:
    """``type/subtype`` in lower case without parameters, or application/octet-stream."""
    if not raw:
        return FALLBACK_TYPE
    value = raw.split(";", 1)[0].strip().lower()
    return value if _MIME.fullmatch(value) else FALLBACK_TYPE
