"""Markdown reports through jinja2 templates a user can replace (`--template`).

Three built-in templates in `ci_gate/reports/templates/`:
- `comment.md.j2` — the merge/pull-request comment (short: verdict, counts, the worst findings);
- `summary.md.j2` — the job summary (GitHub `GITHUB_STEP_SUMMARY`), the same with more rows;
- `compliance.md.j2` — the compliance report: DoD guide section / CIS item → status → evidence →
  controls, then the exceptions in force (reason, approver, expiry) and the expired ones, flagged.

Templates never see model objects: they get a context of plain, already-redacted values
(ci_gate.reports.markdown_context), so a custom template cannot print a secret, and `md` / `cell`
filters escape Markdown and HTML. Sizes stay within what the targets accept (GitHub comments
65,536 characters, step summaries 1 MiB): the number of rows shrinks until the text fits.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jinja2
import jinja2.sandbox

from ci_gate.errors import ReportError
from ci_gate.model import Analysis, Evaluation
from ci_gate.reports.common import (
    truncate,
)
from ci_gate.reports.markdown_context import markdown_context

TEMPLATES = Path(__file__).parent / "templates"
COMMENT_LIMIT = 60_000
"""GitHub rejects comment bodies over 65,536 characters; leave room for the marker and footer."""
SUMMARY_LIMIT = 1_000_000
"""GitHub step summaries are limited to 1 MiB per step."""
COMPLIANCE_LIMIT = 5_000_000


def render_markdown(
    evaluation: Evaluation,
    analysis: Analysis,
    kind: str = "comment",
    template: Path | None = None,
) -> str:
    """Render one of the markdown reports: kind = comment, summary or compliance.

    `template` replaces the built-in template of that kind (the `--template` option); it receives
    the same context as the built-in one.
    """
    limits = {
        "comment": (COMMENT_LIMIT, 50),
        "summary": (SUMMARY_LIMIT, 1_000),
        "compliance": (COMPLIANCE_LIMIT, 0),
    }
    if kind not in limits:
        raise ReportError(f"unknown markdown report kind {kind!r}: use comment, summary or compliance")
    limit, rows = limits[kind]
    environment, name = _environment(template, f"{kind}.md.j2")
    try:
        compiled = environment.get_template(name)
    except jinja2.TemplateError as error:
        raise ReportError(
            f"cannot load markdown template {template or name}: {_template_error(error)}; "
            "fix the template or drop --template"
        ) from None
    context = markdown_context(evaluation, analysis)
    while True:
        try:
            text = compiled.render(**context, max_findings=rows, kind=kind)
        except jinja2.TemplateError as error:
            raise ReportError(
                f"markdown template {template or name} failed: {_template_error(error)}; "
                "fix the template or drop --template"
            ) from None
        if len(text) <= limit or rows <= 5:
            return truncate(text, limit, "\n\n… (truncated: see the JSON report for everything)\n")
        rows = max(rows // 2, 5)


def _template_error(error: jinja2.TemplateError) -> str:
    line = getattr(error, "lineno", None)
    return f"{error.message or type(error).__name__}" + (f" (line {line})" if line else "")


def _environment(template: Path | None, default_name: str) -> tuple[jinja2.Environment, str]:
    search = [str(TEMPLATES)]
    name = default_name
    if template is not None:
        if not template.is_file():
            raise ReportError(f"markdown template {template} does not exist: give the path of a jinja2 file")
        search.insert(0, str(template.parent.resolve()))
        name = template.name
    return _cached_environment(tuple(search)), name


@functools.lru_cache(maxsize=8)
def _cached_environment(search: tuple[str, ...]) -> jinja2.Environment:
    """One environment per search path: its templates compile once per process (the loader still
    notices a changed file)."""
    # Sandboxed: a --template is code from the repository (a fork's pull request may change it); it
    # may format the context, never reach Python internals (os.popen through __subclasses__).
    environment = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=False,  # Markdown, not HTML: escaping is explicit through the md/cell filters
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = escape_markdown
    environment.filters["cell"] = escape_cell
    environment.filters["advice"] = escape_advice
    environment.filters["code_block"] = code_block
    return environment


def escape_markdown(value: object) -> str:
    """Plain text safe to put into Markdown: no HTML, no comment markers, no accidental formatting."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def escape_cell(value: object) -> str:
    """Text for one Markdown table cell: escaped, on one line, not too long."""
    text = " ".join(str(value).split())
    return escape_markdown(truncate(text, 300))


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def escape_advice(value: object, limit: int = 600) -> str:
    """Advice text for running text or a table cell: `code` spans kept as code, the rest escaped."""
    text = truncate(" ".join(str(value).split()), limit)
    parts = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(escape_markdown(text[position : match.start()]))
        parts.append("`" + match.group(1).replace("|", "\\|") + "`")
        position = match.end()
    parts.append(escape_markdown(text[position:]))
    return "".join(parts)


def code_block(value: object, language: str = "") -> str:
    """A fenced code block that its content cannot close (the fence is longer than any backtick run)."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"
