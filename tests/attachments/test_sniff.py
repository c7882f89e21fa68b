"""The type of a file is read from its bytes, never from its name."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from huying.attachments import sniff
from tests.attachments import samples


@pytest.mark.parametrize(
    ("make", "content_type"),
    [
        (samples.png, sniff.PNG),
        (samples.jpeg, sniff.JPEG),
        (samples.webp, sniff.WEBP),
        (samples.pdf, sniff.PDF),
        (samples.ofd, sniff.OFD),
        (samples.docx, sniff.DOCX),
        (samples.docx_word_last, sniff.DOCX),
        (samples.xlsx, sniff.XLSX),
        (samples.doc_office, sniff.DOC),
        (lambda: samples.compound_with_stream("WordDocument"), sniff.DOC),
        (samples.xls_office, sniff.XLS),
        (lambda: samples.compound_with_stream("Workbook"), sniff.XLS),
    ],
)
def test_accepted_types_are_recognised(make: Callable[[], bytes], content_type: str) -> None:
    source = io.BytesIO(make())
    assert sniff.sniff(source) == content_type
    assert source.tell() == 0  # left at its start, for the storage to read


@pytest.mark.parametrize(
    "make",
    [
        samples.elf,
        samples.pe,
        samples.plain_zip,  # a ZIP is not an OFD unless OFD.xml is at its root
        lambda: samples.compound_with_stream("PowerPoint Document"),
        lambda: b"GIF89a" + bytes(100),  # an image, but not one of the accepted kinds
        lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        lambda: b"PK\x03\x04" + bytes(100),  # a ZIP signature on a broken archive
        lambda: b"",
    ],
)
def test_anything_else_is_refused(make: Callable[[], bytes]) -> None:
    assert sniff.sniff(io.BytesIO(make())) is None
