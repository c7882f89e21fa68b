"""What the API says of an attachment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Visibility = Literal["public", "internal"]


class AttachmentOut(BaseModel):
    """An uploaded file, as `POST /api/v1/attachments` answers it."""

    id: int
    name: str = Field(description="the file's name as uploaded")
    content_type: str = Field(description="sniffed from the content, not from the name")
    size: int = Field(description="in bytes")
    sha256: str = Field(description="hex; also the download's ETag")
    visibility: Visibility = Field(
        description="public: in the public view (integrations, the enterprise's receipt); "
        "internal: staff only"
    )


class AttachmentOnRequest(AttachmentOut):
    """An attachment bound to a request, as the request lists it."""

    timeline_seq: int | None = Field(description="the timeline entry it came with")
    url: str = Field(description="where to download it: GET, with the same credentials")
