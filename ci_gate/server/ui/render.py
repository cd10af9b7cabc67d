"""How a dashboard page is drawn: jinja2 with autoescaping, the one style sheet inline (allowed by its
hash), and the headers that forbid every script, every foreign load and framing."""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"


@functools.lru_cache(maxsize=1)
def _style() -> tuple[Markup, str]:
    css = (TEMPLATES / "ui.css").read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return Markup(css), f"'sha256-{digest}'"


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["q"] = lambda value: quote(str(value), safe="")
    return environment


def page(template: str, **context: Any) -> HTMLResponse:
    css, style_source = _style()
    html = _environment().get_template(template).render(css=css, **context)
    return HTMLResponse(html, headers={
        "Content-Security-Policy": f"default-src 'none'; style-src {style_source}; img-src 'self'; "
                                   "script-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Frame-Options": "DENY"})
