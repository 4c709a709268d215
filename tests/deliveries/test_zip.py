""" "Download all as ZIP": the streaming ZIP writer and the view that uses it."""

import io
import os
import struct
import zipfile
from datetime import datetime
from email.message import EmailMessage

import pytest

from deliveries.models import AuditEvent, Download
from deliveries.zipstream import MAX_32, Entry, ZipError, ZipStream
from tests.deliveries.conftest import store_blob
from tests.deliveries.receive_support import (
    body,
    events,
    open_and_confirm,
    zip_url,
)

WHEN = datetime(2025, 3, 4, 5, 6, 8)


def entry(name, data, when=WHEN):
    return Entry(
        name, len(data), lambda: iter([data[: len(data) // 2], data[len(data) // 2 :]]), when
    )


def test_all_files_come_back_in_one_zip(client, make_delivery):
    files = {"a.txt": b"alpha" * 1000, "b.bin": os.urandom(200_000), "empty": b""}
    made = make_delivery(files=files, subject="Figures: Q3/Q4")
    open_and_confirm(client, made)

    response = client.get(zip_url(made))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    message = EmailMessage()
    message["Content-Disposition"] = response["Content-Disposition"]
    assert message.get_filename() == "Figures_ Q3_Q4.zip"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    data = body(response)
    assert len(data) == int(response["Content-Length"])
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert {name: archive.read(name) for name in archive.namelist()} == files
    (event,) = events(AuditEvent.Kind.DOWNLOADED)
    assert event.detail["zip"] is True
    assert sorted(event.detail["files"]) == sorted(str(f.pk) for f in made.files.values())
    assert event.detail["size"] == sum(len(d) for d in files.values())
    assert Download.objects.filter(count=1).count() == 3


def test_duplicate_and_hostile_names_become_safe_and_unique(client, make_delivery):
    made = make_delivery(files={"report.pdf": b"one"})
    for name, data in [("report.pdf", b"two"), ("../../etc/passwd", b"x"), ("C:\\win.ini", b"y")]:
        store_blob(made.delivery, made.key, name, data)
    open_and_confirm(client, made)

    archive = zipfile.ZipFile(io.BytesIO(body(client.get(zip_url(made)))))

    names = archive.namelist()
    assert names == ["report.pdf", "report (2).pdf", "_.._etc_passwd", "C__win.ini"]
    assert [archive.read(n) for n in names] == [b"one", b"two", b"x", b"y"]
    for name in names:
        assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_head_gives_the_zips_exact_size_without_counting(client, make_delivery):
    made = make_delivery(files={"a": b"1" * 10, "b": b"2" * 20})
    open_and_confirm(client, made)

    size = int(client.head(zip_url(made))["Content-Length"])

    assert not Download.objects.exists()
    assert size == len(body(client.get(zip_url(made))))


def test_small_archives_use_plain_records():
    data = b"".join(ZipStream([entry("a.txt", b"hello")]))

    assert b"PK\x06\x06" not in data  # no ZIP64 end record
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("a.txt")
    assert info.extra == b"" and info.date_time == (2025, 3, 4, 5, 6, 8)
    assert info.flag_bits & 0x0808 == 0x0808  # data descriptor, UTF-8 names


def test_forced_zip64_writes_the_zip64_records_zipfile_reads():
    contents = {"a.txt": b"hello", "ü/b.bin": os.urandom(70_000), "empty": b""}
    stream = ZipStream([entry(n, d) for n, d in contents.items()], force_zip64=True)

    data = b"".join(stream)

    assert len(data) == stream.size
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert {n: archive.read(n) for n in archive.namelist()} == contents
    for info in archive.infolist():
        assert info.extra[:2] == b"\x01\x00"  # the ZIP64 extended information field
    end = data.rindex(b"PK\x05\x06")
    locator = data.rindex(b"PK\x06\x07")
    end64 = data.rindex(b"PK\x06\x06")
    assert end64 < locator < end
    assert struct.unpack_from("<Q", data, locator + 8)[0] == end64
    on_disk, count, size, offset = struct.unpack_from("<QQQQ", data, end64 + 24)
    assert on_disk == count == 3 and offset + size == end64
    # The classic end record points to the ZIP64 one with its "see ZIP64" markers.
    assert struct.unpack_from("<HHII", data, end + 8) == (0xFFFF, 0xFFFF, MAX_32, MAX_32)
    # Data descriptors carry 8-byte sizes after a ZIP64 local header.
    descriptor = data.index(b"PK\x07\x08")
    assert struct.unpack_from("<QQ", data, descriptor + 8) == (5, 5)


def test_a_member_past_4_gib_is_found_through_zip64(tmp_path):
    """A sparse archive: 4 GiB of zeros are never written to disk, only skipped."""
    zeros = bytes(1 << 20)
    big = MAX_32 + 6

    def zero_source():
        left = big
        while left:
            n = min(left, len(zeros))
            yield zeros if n == len(zeros) else zeros[:n]
            left -= n

    stream = ZipStream(
        [
            Entry("big.bin", big, zero_source, WHEN),
            Entry("after.txt", 5, lambda: [b"after"], WHEN),
        ]
    )
    path = tmp_path / "sparse.zip"
    with open(path, "wb") as out:
        for piece in stream:
            if piece is zeros:
                out.seek(len(piece), os.SEEK_CUR)
            else:
                out.write(piece)

    assert path.stat().st_size == stream.size
    archive = zipfile.ZipFile(path)
    big_info, after = archive.infolist()
    assert big_info.file_size == big
    assert after.header_offset > MAX_32
    assert archive.read("after.txt") == b"after"
    with archive.open("big.bin") as member:
        assert member.read(1000) == bytes(1000)


def test_an_entry_that_lies_about_its_size_breaks_the_stream():
    short = Entry("short", 10, lambda: [b"12345"], WHEN)
    long = Entry("long", 2, lambda: [b"12345"], WHEN)

    for bad in (short, long):
        with pytest.raises(ZipError):
            b"".join(ZipStream([bad]))


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a\\b", "a//b", ""])
def test_unsafe_member_names_are_refused(name):
    with pytest.raises(ValueError):
        ZipStream([entry(name, b"x")])
