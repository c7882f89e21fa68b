"""Small files of every kind an upload meets, made here byte by byte (or by openpyxl, for a
real XLSX), so that the tests say exactly what each one holds."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def png() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """The start of a JFIF file: its signature and APP0 segment."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200)


def webp() -> bytes:
    body = b"WEBPVP8 " + struct.pack("<I", 10) + bytes(10)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def ofd() -> bytes:
    """An OFD package: OFD.xml at the root, the document below it."""
    return zipped(
        {
            "OFD.xml": b'<?xml version="1.0"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" '
            b'Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml'
            b"</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
            "Doc_0/Document.xml": b"<ofd:Document/>",
        }
    )


def docx() -> bytes:
    return zipped(
        {
            "[Content_Types].xml": b"<Types/>",
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document/>",
        }
    )


def docx_word_last() -> bytes:
    """A DOCX whose first five entries say nothing of Word: only the archive's directory
    tells what it is."""
    return zipped(
        {
            "[Content_Types].xml": b"<Types/>",
            "customXml/item1.xml": b"<a/>",
            "customXml/item2.xml": b"<a/>",
            "customXml/item3.xml": b"<a/>",
            "customXml/item4.xml": b"<a/>",
            "customXml/item5.xml": b"<a/>",
            "word/document.xml": b"<w:document/>",
        }
    )


def xlsx() -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs in the dev deps

    book = Workbook()
    book.active.append(["整改项", "完成"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plain_zip() -> bytes:
    return zipped({"readme.txt": b"hello", "ofd.xml.txt": b"not at the root as OFD.xml"})


def doc_office() -> bytes:
    """A compound file whose second sector starts the Word stream (0xA5EC), as Word writes."""
    return OLE2 + bytes(504) + b"\xec\xa5\xc1\x00" + bytes(2048)


def compound_with_stream(name: str) -> bytes:
    """A compound file with a directory entry for the stream `name` (as WPS writes a .doc):
    64 bytes of UTF-16 name, its length with the terminator, entry type 2 (stream)."""
    encoded = name.encode("utf-16-le") + b"\x00\x00"
    entry = encoded.ljust(64, b"\x00") + struct.pack("<H", len(encoded)) + b"\x02" + bytes(61)
    return OLE2 + bytes(1528) + entry + bytes(512)


def xls_office() -> bytes:
    return OLE2 + bytes(504) + b"\x09\x08\x10\x00\x00\x06\x05\x00" + bytes(2048)


def elf() -> bytes:
    """The start of an x86-64 ELF executable."""
    return b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(500)


def pe() -> bytes:
    """The start of a Windows executable: MZ, and the PE header it points to."""
    return b"MZ\x90\x00" + bytes(56) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(400)
