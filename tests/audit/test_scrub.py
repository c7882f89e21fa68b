"""What the audit log is given is scrubbed in one place: no secret, password, hash or token
at any depth, whether a service passes a mapping or one of its pydantic models."""

from __future__ import annotations

from pydantic import BaseModel

from huying.audit.service import scrub


class Inner(BaseModel):
    name: str
    token_hash: str


class Outer(BaseModel):
    url: str
    secret: str
    keys: list[Inner]


def test_a_mapping_loses_its_secrets_at_every_depth() -> None:
    given = {"name": "x", "password": "p", "nested": [{"secret": "s", "ok": 1}]}
    assert scrub(given) == {"name": "x", "nested": [{"ok": 1}]}


def test_a_model_is_scrubbed_like_a_mapping() -> None:
    model = Outer(url="https://h/", secret="whsec_x", keys=[Inner(name="k", token_hash="ab")])
    assert scrub(model) == {"url": "https://h/", "keys": [{"name": "k"}]}
