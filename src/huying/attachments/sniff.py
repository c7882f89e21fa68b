"""What an uploaded file is, read from its bytes and never from its name: a photo named
`.jpg` that is really an executable is refused, whatever it is called.

The `filetype` library reads the signature at the start of the file. Three kinds need a look
further in, on top of what it says:

- OFD (GB/T 33190, China's fixed-layout format for official documents) is a ZIP archive
  whose root holds `OFD.xml`; `filetype` knows it only as a ZIP.
- DOCX and XLSX are ZIP archives too. `filetype` tells them apart by the names of the first
  entries, which not every writer puts first; the archive's own directory (`zipfile`) says
  for certain whether `word/document.xml` or `xl/workbook.xml` is there.
- DOC and XLS are OLE2 compound files. `filetype` recognises those whose first sector is
  the document's stream, as Microsoft Office writes them; others (WPS Office, LibreOffice)
  are recognised by the directory entry of their main stream, `WordDocument` or `Workbook`.

Nothing is decompressed: a ZIP's directory is read, never its entries.
"""

from __future__ import annotations

import zipfile
from typing import IO, Any

import filetype  # type: ignore[import-untyped]
from filetype.types import archive, document, image  # type: ignore[import-untyped]

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
PDF = "application/pdf"
OFD = "application/ofd"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"

# Every type an attachment may have, as the download's Content-Type says it.
ACCEPTED = (JPEG, PNG, WEBP, PDF, OFD, DOCX, XLSX, DOC, XLS)
IMAGES = (JPEG, PNG, WEBP)
# What a person is told the accepted types are.
ACCEPTED_NAMES = "JPEG, PNG, WebP, PDF, OFD, DOCX, XLSX, DOC, XLS"

# The bytes `filetype` looks at.
HEAD_BYTES = 8192
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIPPED = (archive.Zip.MIME, document.Docx.MIME, document.Xlsx.MIME)
# Only the signatures of accepted types (and ZIP, looked into below), in this order:
# `filetype`'s own list has ZIP before DOCX and XLSX, and much that is refused anyway.
_MATCHERS: tuple[Any, ...] = (
    image.Jpeg(),
    image.Png(),
    image.Webp(),
    archive.Pdf(),
    document.Docx(),
    document.Xlsx(),
    document.Doc(),
    document.Xls(),
    archive.Zip(),
)


def sniff(source: IO[bytes]) -> str | None:
    """The content type of the file, one of ACCEPTED; None for anything else. `source` is
    seekable; it is left at its start."""
    source.seek(0)
    head = source.read(HEAD_BYTES)
    source.seek(0)
    found = filetype.match(head, matchers=_MATCHERS)
    try:
        if found is not None and found.mime in _ZIPPED:
            return _zipped(source)
        if found is not None:
            return str(found.mime)
        if head.startswith(_OLE2):
            return _compound(source)
        return None
    finally:
        source.seek(0)


def _zipped(source: IO[bytes]) -> str | None:
    """OFD, DOCX or XLSX by the entries the archive's directory lists; None for any other
    archive, or one whose directory cannot be read."""
    try:
        with zipfile.ZipFile(source) as archive_file:
            names = set(archive_file.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None
    if "OFD.xml" in names:
        return OFD
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    return None


def _entry(name: str) -> bytes:
    """An OLE2 directory entry of a stream called `name`: the name in UTF-16LE padded to 64
    bytes, its length in bytes with the terminator, and the entry type 2 (a stream)."""
    encoded = name.encode("utf-16-le") + b"\x00\x00"
    return encoded.ljust(64, b"\x00") + len(encoded).to_bytes(2, "little") + b"\x02"


_COMPOUND_STREAMS = (
    (_entry("WordDocument"), DOC),
    (_entry("Workbook"), XLS),
    (_entry("Book"), XLS),
)


def _compound(source: IO[bytes]) -> str | None:
    """DOC or XLS by the directory entry of its main stream; None for other compound files
    (PowerPoint, Outlook messages, encrypted OOXML …)."""
    data = source.read()
    for entry, content_type in _COMPOUND_STREAMS:
        if entry in data:
            return content_type
    return None
