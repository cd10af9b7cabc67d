"""The HTML report's jinja2 environment, and the template compiled to Python by it.

This module imports nothing of ci_gate: the wheel build (`build_hooks.py`, run by setuptools) loads it
by its file path, with only jinja2 and markupsafe installed, and writes `compiled_source()` into the
wheel as `ci_gate/reports/html_compiled.py`. jinja2 takes longer to parse and compile the template than
to render it, and a gate writes one report per process on a fresh CI runner, so an installed ci-gate
renders from that module; a source checkout (which has no such module) compiles the template at first
use. Generated code is never checked in: the template is the one source.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"
COMPILED_MODULE = "html_compiled"
"""The module the wheel build writes next to this one (`ci_gate.reports.html_compiled`)."""

_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def advice_html(value: object) -> Markup:
    """Advice text with its `code` spans as <code>; every part escaped."""
    text = " ".join(str(value).split())
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(str(escape(text[position:match.start()])))
        parts.append(f"<code>{escape(match.group(1))}</code>")
        position = match.end()
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))


@functools.lru_cache(maxsize=1)
def html_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every value is escaped; the only Markup made here is `advice` (escaped parts)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["advice"] = advice_html
    environment.filters["slug"] = lambda value: re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")
    return environment


def source_sha256() -> str:
    """The hash of the template's source, which the compiled module records: an installed ci-gate whose
    template was edited after the build compiles the template again instead of rendering stale code."""
    return hashlib.sha256((TEMPLATES / TEMPLATE_NAME).read_bytes()).hexdigest()


def compiled_source() -> str:
    """The Python module the wheel build writes (`html_compiled.py`): the template compiled by jinja2, and
    the hash of the template source it came from."""
    source = (TEMPLATES / TEMPLATE_NAME).read_text("utf-8")
    code = html_environment().compile(source, TEMPLATE_NAME, TEMPLATE_NAME, raw=True, defer_init=True)
    return ("# ruff: noqa\n# mypy: ignore-errors\n"
            f'"""Generated from templates/{TEMPLATE_NAME} when the wheel was built (build_hooks.py)."""\n'
            f"SOURCE_SHA256 = {source_sha256()!r}\n{code}\n")
