"""The Jinja2 environment of the console's templates (built on first use, never at import)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from huying.web import labels

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


@cache
def _asset_versions() -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in STATIC_DIR.iterdir()
        if p.is_file()
    }


def static_url(name: str) -> str:
    """/static/huying.css?v=<content hash>: cached by browsers until the file changes."""
    version = _asset_versions().get(name, "0")
    return f"/static/{name}?v={version}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        static=static_url,
        L=labels,
    )
    env.filters["duration_zh"] = labels.duration
    env.filters["num"] = _num
    return env


def _num(value: float) -> str:
    return f"{value:.1f}"


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)
