"""File names as a recipient gets them: in a Content-Disposition header or inside a ZIP.

A name comes from the sender and may be hostile (``../x``, line breaks, quotes, right-to-left
overrides that make ``exe.pdf`` look like ``fdp.exe``). It is only ever shown or offered as a
name; storage uses ids (``deliveries.storage.blob_name``).
"""

import re
import unicodedata
from urllib.parse import quote

MAX_NAME_BYTES = 255
FALLBACK_NAME = "download"
# Control, format (bidi overrides, zero-width characters), line/paragraph separators,
# surrogates and private use: nothing a file name needs.
_DROP_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*/\\]')
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,=@!#$&'~\[\]{}-]")
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def _truncate(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """Shorten ``name`` to ``limit`` UTF-8 bytes, keeping a short extension."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    room = limit - len(suffix.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(" .")
    return stem + suffix


def clean_name(name: str, fallback: str = FALLBACK_NAME) -> str:
    """A single path component that is safe on Windows, macOS and Linux, at most 255 bytes."""
    name = unicodedata.normalize("NFC", name or "")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROP_CATEGORIES)
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name:
        name = fallback
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return _truncate(name)


def ascii_name(name: str, fallback: str = FALLBACK_NAME) -> str:
    """The plain-ASCII form of a cleaned name for ``filename=""`` (old clients)."""
    text = unicodedata.normalize("NFKD", clean_name(name, fallback))
    text = _ASCII_UNSAFE.sub("_", text.encode("ascii", "ignore").decode("ascii"))
    stem, dot, ext = text.rpartition(".")
    if not dot:
        stem, ext = text, ""
    stem = stem.strip(" .")
    if not stem.strip("_"):
        stem = fallback
    ext = ext.strip(" ") if ext.strip("_ ") else ""
    return _truncate(stem + (f".{ext}" if ext else ""))


def content_disposition(name: str) -> str:
    """RFC 6266 attachment header: an ASCII fallback and the UTF-8 name (RFC 8187)."""
    clean = clean_name(name)
    return f"attachment; filename=\"{ascii_name(clean)}\"; filename*=UTF-8''{quote(clean, safe='')}"


def unique_names(names) -> list[str]:
    """Cleaned names, made unique case-insensitively: ``a.txt``, ``a (2).txt``, ..."""
    taken: set[str] = set()
    result = []
    for raw in names:
        name = clean_name(raw)
        if name.casefold() in taken:
            stem, dot, ext = name.rpartition(".")
            if not dot or not stem:
                stem, ext = name, ""
            n = 2
            while True:
                suffix = f" ({n})" + (f".{ext}" if ext else "")
                candidate = _truncate(stem, MAX_NAME_BYTES - len(suffix.encode())) + suffix
                if candidate.casefold() not in taken:
                    name = candidate
                    break
                n += 1
        taken.add(name.casefold())
        result.append(name)
    return result
