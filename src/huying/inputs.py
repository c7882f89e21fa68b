"""The base of every input model, wherever the input comes from: the API's bodies, the
console's forms and `huying load`'s files all validate through these models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

NUL_MESSAGE = "text may not hold a NUL character (\\u0000): the database cannot store one"


def holds_nul(value: Any) -> bool:
    """Whether a NUL character stands in any string of `value`, keys and nested values too."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    return False


class Input(BaseModel):
    """Unknown fields are refused, and so is a NUL character in any text."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if holds_nul(data):
            raise ValueError(NUL_MESSAGE)
        return data
