"""Hostile file names neither escape storage nor break the Content-Disposition header."""

import io
import re
import unicodedata
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.conf import settings

from deliveries.receive_names import MAX_NAME_BYTES, content_disposition
from tests.deliveries.conftest import store_blob
from tests.deliveries.receive_support import (
    body,
    file_url,
    open_and_confirm,
    page,
    zip_url,
)

HOSTILE = [
    "../x",
    "..\\..\\boot.ini",
    "/etc/passwd",
    "a\r\nContent-Type: text/html\r\n\r\n<h1>hi</h1>.txt",
    "quote\"s and \\back\\slashes'.txt",
    "invoice\u202efdp.exe",  # shows as "invoiceexe.pdf" where bidi overrides work
    "\u2067isolate\u2069 \u200fmark\u200e.txt",
    "é" * 250 + ".pdf",  # 254 characters, 504 bytes in UTF-8
    "<img src=x onerror=alert(1)>.png",
    "bell\x07and\x1bescape\x7f.txt",  # (PostgreSQL text cannot hold NUL at all)
    "..",
]
BIDI_AND_CONTROL = re.compile("[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def parse_disposition(header: str) -> tuple[str, str, str]:
    """(type, filename, filename*) as an RFC 6266 client reads them."""
    kind, _, rest = header.partition(";")
    fallback = re.fullmatch(r'\s*filename="([^"\\]*)";\s*filename\*=UTF-8\'\'(\S+)', rest)
    assert fallback, header
    return kind, fallback.group(1), unquote(fallback.group(2), errors="strict")


def assert_safe(name: str):
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name
    assert not BIDI_AND_CONTROL.search(name)
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert unicodedata.normalize("NFC", name) == name


@pytest.fixture
def hostile(make_delivery, client):
    made = make_delivery(files={})
    for i, name in enumerate(HOSTILE):
        made.files[name] = store_blob(made.delivery, made.key, name, f"content {i}".encode())
        made.plaintexts[name] = f"content {i}".encode()
    open_and_confirm(client, made)
    return made


def test_hostile_names_download_with_a_header_that_parses_back(client, hostile):
    for name in HOSTILE:
        response = client.get(file_url(hostile, name))

        assert response.status_code == 200, name
        kind, fallback, utf8 = parse_disposition(response["Content-Disposition"])
        assert kind == "attachment"
        assert_safe(utf8)
        assert_safe(fallback)
        assert fallback.isascii() and '"' not in fallback
        assert body(response) == hostile.plaintexts[name]

    _, _, rtl = parse_disposition(client.get(file_url(hostile, HOSTILE[5]))["Content-Disposition"])
    assert rtl == "invoicefdp.exe"  # what it really is: an .exe
    _, fallback, long = parse_disposition(
        client.get(file_url(hostile, HOSTILE[7]))["Content-Disposition"]
    )
    assert long.endswith(".pdf") and long.startswith("éé")
    assert re.fullmatch(r"e{100,}\.pdf", fallback)


def test_hostile_names_never_reach_the_file_system(client, hostile):
    blobs = Path(settings.MEDIA_ROOT)
    stored = sorted(p.relative_to(blobs).as_posix() for p in blobs.rglob("*") if p.is_file())

    assert stored == sorted(f.storage_name for f in hostile.files.values())
    for f in hostile.files.values():
        assert f.storage_name == f"{hostile.delivery.id}/{f.id}.sxf"
    assert not (blobs.parent / "x").exists()


def test_hostile_names_inside_the_zip_extract_only_where_asked(client, hostile, tmp_path):
    archive = zipfile.ZipFile(io.BytesIO(body(client.get(zip_url(hostile)))))
    target = tmp_path / "unzipped"

    archive.extractall(target)

    names = archive.namelist()
    assert len(names) == len(set(n.casefold() for n in names)) == len(HOSTILE)
    for name in names:
        assert_safe(name)
    extracted = sorted(p.name for p in target.rglob("*"))
    assert extracted == sorted(names)
    assert sorted(p.read_bytes() for p in target.iterdir()) == sorted(hostile.plaintexts.values())


def test_hostile_names_are_shown_as_text_on_the_delivery_page(client, hostile):
    text = client.get(page(hostile)).text

    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in text


def test_a_300_character_name_is_cut_to_255_bytes_keeping_its_extension():
    header = content_disposition("ä" * 300 + ".docx")

    _, fallback, utf8 = parse_disposition(header)

    assert len(utf8.encode()) <= MAX_NAME_BYTES and utf8.endswith(".docx")
    assert len(fallback) <= MAX_NAME_BYTES and fallback.endswith(".docx")
    assert "\r" not in header and "\n" not in header
