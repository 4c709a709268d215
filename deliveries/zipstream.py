"""A streaming ZIP writer: one pass, nothing held in memory, exact size known up front.

Entries are *stored* (the files are mostly compressed already, and the server should spend
its time on AES, not deflate). The CRC-32 is computed while the data passes, so each entry
carries a data descriptor (flag bit 3). Since every entry's size is known in advance, the
whole archive's length is too, and the HTTP response can carry a Content-Length.

ZIP64 (APPNOTE.TXT 4.3.9, 4.5.3, 4.3.14, 4.3.15) is used where a size, an offset or the
number of entries needs it, or everywhere with ``force_zip64`` (for tests). It follows what
Python's ``zipfile`` writes for unseekable streams: in a ZIP64 local header both sizes are
0xFFFFFFFF with zeros in the ZIP64 extra field, and the data descriptor holds 8-byte sizes.

This module imports no Django.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

MAX_32 = 0xFFFFFFFF
MAX_16 = 0xFFFF
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_DESCRIPTOR_32 = struct.Struct("<IIII")
_DESCRIPTOR_64 = struct.Struct("<IIQQ")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_SIG_LOCAL = 0x04034B50
_SIG_CENTRAL = 0x02014B50
_SIG_DESCRIPTOR = 0x08074B50
_SIG_END = 0x06054B50
_SIG_END64 = 0x06064B50
_SIG_LOCATOR64 = 0x07064B50
_FLAGS = 0x0008 | 0x0800  # data descriptor follows; names are UTF-8
_VERSION_PLAIN = 20
_VERSION_ZIP64 = 45
_MADE_BY_UNIX = 3 << 8
_REGULAR_FILE_RW = 0o100644 << 16


class ZipError(Exception):
    """An entry produced another number of bytes than it announced."""


@dataclass(frozen=True)
class Entry:
    """One member: its name inside the archive, its exact size and how to read it.

    ``open`` is called when the writer reaches the entry and must return an iterable of
    bytes (a generator reading the file); it is closed afterwards if it can be.
    """

    name: str
    size: int
    open: Callable[[], Iterable[bytes]]
    modified: datetime


def dos_datetime(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS format, clamped to the range it can express."""
    year = min(max(moment.year, 1980), 2107)
    if year != moment.year:
        moment = datetime(year, 1, 1)
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    return time, date


def _check_name(name: str) -> bytes:
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or ".." in parts or "" in parts:
        raise ValueError(f"unsafe name inside a ZIP: {name!r}")
    return name.encode("utf-8")


@dataclass
class _Planned:
    entry: Entry
    name: bytes
    offset: int
    time: int
    date: int
    zip64_sizes: bool
    zip64_offset: bool

    @property
    def local_extra(self) -> bytes:
        return struct.pack("<HHQQ", 1, 16, 0, 0) if self.zip64_sizes else b""

    def local_header(self) -> bytes:
        version = _VERSION_ZIP64 if self.zip64_sizes else _VERSION_PLAIN
        size = MAX_32 if self.zip64_sizes else 0
        extra = self.local_extra
        return (
            _LOCAL.pack(
                _SIG_LOCAL,
                version,
                _FLAGS,
                0,  # stored
                self.time,
                self.date,
                0,  # CRC-32 in the data descriptor
                size,
                size,
                len(self.name),
                len(extra),
            )
            + self.name
            + extra
        )

    def descriptor(self, crc: int) -> bytes:
        size = self.entry.size
        if self.zip64_sizes:
            return _DESCRIPTOR_64.pack(_SIG_DESCRIPTOR, crc, size, size)
        return _DESCRIPTOR_32.pack(_SIG_DESCRIPTOR, crc, size, size)

    def central_header(self, crc: int) -> bytes:
        fields = b""
        size = self.entry.size
        if self.zip64_sizes:
            fields += struct.pack("<QQ", size, size)
        if self.zip64_offset:
            fields += struct.pack("<Q", self.offset)
        extra = struct.pack("<HH", 1, len(fields)) + fields if fields else b""
        version = _VERSION_ZIP64 if extra else _VERSION_PLAIN
        return (
            _CENTRAL.pack(
                _SIG_CENTRAL,
                _MADE_BY_UNIX | version,
                version,
                _FLAGS,
                0,
                self.time,
                self.date,
                crc,
                MAX_32 if self.zip64_sizes else size,
                MAX_32 if self.zip64_sizes else size,
                len(self.name),
                len(extra),
                0,  # comment
                0,  # disk
                0,  # internal attributes
                _REGULAR_FILE_RW,
                MAX_32 if self.zip64_offset else self.offset,
            )
            + self.name
            + extra
        )

    @property
    def stored_length(self) -> int:
        """Bytes from the local header to the end of the data descriptor."""
        descriptor = _DESCRIPTOR_64.size if self.zip64_sizes else _DESCRIPTOR_32.size
        return _LOCAL.size + len(self.name) + len(self.local_extra) + self.entry.size + descriptor


class ZipStream:
    """Iterate to get the archive's bytes; ``size`` is its exact length beforehand."""

    def __init__(self, entries: Iterable[Entry], *, force_zip64: bool = False):
        self.force_zip64 = force_zip64
        self._planned: list[_Planned] = []
        offset = 0
        for entry in entries:
            if entry.size < 0:
                raise ValueError("an entry cannot have a negative size")
            time, date = dos_datetime(entry.modified)
            planned = _Planned(
                entry=entry,
                name=_check_name(entry.name),
                offset=offset,
                time=time,
                date=date,
                zip64_sizes=force_zip64 or entry.size >= MAX_32,
                zip64_offset=force_zip64 or offset >= MAX_32,
            )
            self._planned.append(planned)
            offset += planned.stored_length
        self._directory_offset = offset
        # The central directory's length does not depend on the CRCs.
        self._directory_size = sum(len(p.central_header(0)) for p in self._planned)
        self.size = offset + self._directory_size + len(self._end_records())

    @property
    def _needs_zip64_end(self) -> bool:
        return (
            self.force_zip64
            or len(self._planned) >= MAX_16
            or self._directory_size >= MAX_32
            or self._directory_offset >= MAX_32
        )

    def _end_records(self) -> bytes:
        count, size, offset = len(self._planned), self._directory_size, self._directory_offset
        records = b""
        if self._needs_zip64_end:
            end64_offset = offset + size
            records += _END64.pack(
                _SIG_END64,
                _END64.size - 12,
                _MADE_BY_UNIX | _VERSION_ZIP64,
                _VERSION_ZIP64,
                0,
                0,
                count,
                count,
                size,
                offset,
            )
            records += _LOCATOR64.pack(_SIG_LOCATOR64, 0, end64_offset, 1)
            if self.force_zip64:
                count, size, offset = MAX_16, MAX_32, MAX_32
        records += _END.pack(
            _SIG_END,
            0,
            0,
            min(count, MAX_16),
            min(count, MAX_16),
            min(size, MAX_32),
            min(offset, MAX_32),
            0,
        )
        return records

    def __iter__(self) -> Iterator[bytes]:
        crcs = []
        for planned in self._planned:
            yield planned.local_header()
            crc = 0
            written = 0
            source = planned.entry.open()
            try:
                for data in source:
                    if not data:
                        continue
                    written += len(data)
                    if written > planned.entry.size:
                        raise ZipError(f"{planned.entry.name} is longer than announced")
                    crc = zlib.crc32(data, crc)
                    yield data
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            if written != planned.entry.size:
                raise ZipError(
                    f"{planned.entry.name} ended after {written} of {planned.entry.size} bytes"
                )
            crcs.append(crc)
            yield planned.descriptor(crc)
        yield b"".join(p.central_header(crc) for p, crc in zip(self._planned, crcs, strict=True))
        yield self._end_records()
