"""Open311's two formats. JSON: the answer as is, a list or an object. XML: the same
mapped element by element (GeoReport v2's Spark convention): a root element, one child
per field, lists as one element per item. UTF-8 both; the XML with its declaration.

Errors are `[{code, description}]` / `<errors><error><code/><description/></error></errors>`,
`code` the HTTP status."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from xml.etree import ElementTree as ET

from fastapi.responses import Response
from pydantic import BaseModel

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# The element of each item of a list, by the list's element (GeoReport v2's names).
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}
# Characters XML 1.0 cannot hold at all, not even escaped: left out of the text.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def format_of(suffix: str) -> Format | None:
    """The format a path's suffix names (`json`, `xml`), or None."""
    return next((f for f in FORMATS if f == suffix.lower()), None)


def respond(
    fmt: Format, root: str, content: BaseModel | Sequence[BaseModel], status: int = 200
) -> Response:
    """One answer: a list under `root` (its items named by ITEMS), or one object as `root`."""
    data: Any = (
        content.model_dump(mode="json")
        if isinstance(content, BaseModel)
        else [item.model_dump(mode="json") for item in content]
    )
    return _send(fmt, root, data, status)


def errors(fmt: Format, status: int, descriptions: Sequence[str]) -> Response:
    """Open311's error answer: one `{code, description}` per problem, code the status."""
    data = [{"code": status, "description": d} for d in descriptions]
    return _send(fmt, "errors", data, status)


def _send(fmt: Format, root: str, data: Any, status: int) -> Response:
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        body = DECLARATION + ET.tostring(
            _element(root, data), encoding="utf-8", xml_declaration=False
        )
    return Response(body, status_code=status, media_type=MEDIA[fmt])


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, child in value.items():
            element.append(_element(str(key), child))
    elif isinstance(value, list):
        item = ITEMS.get(tag, "item")
        for child in value:
            element.append(_element(item, child))
    else:
        element.text = _text(value)
    return element


def _text(value: Any) -> str | None:
    """A value as XML text: none for null, true/false, numbers as JSON writes them."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return _NOT_XML.sub("", str(value))
