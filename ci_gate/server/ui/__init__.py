"""The dashboard of `ci-gate serve` at /ui/: images and tags with their current verdict, and a tag's
verdict history (one point per digest the tag has pointed to, from the tag_history table), drawn as
inline SVG. Server-side rendered with jinja2; read-only (it offers no form, so there is nothing to
forge: a later action must carry a CSRF token and go through the API's own handlers).

Every page is behind the API's authentication (the same `route` wrapper as the API), every value is
autoescaped, and the Content-Security-Policy forbids every script and every load except the one
inline style sheet, allowed by its hash, and links back to the dashboard itself.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from starlette.routing import Route

TEMPLATES = Path(__file__).parent / "templates"
HISTORY_LIMIT = 30
"""The newest digests of a tag the history shows (each is evaluated when the page is drawn)."""


@dataclass(frozen=True)
class Verdict:
    """One image under one tag, as the dashboard shows it."""

    tag: str
    digest: str
    status: str
    """The analysis status (analyzed, analyzing, …)."""
    final_action: str
    """GO, WARN, STOP, or empty when the image is not analysed (or could not be evaluated)."""
    stop: int
    warn: int
    vulnerabilities: int
    seen: str
    note: str = ""
    findings: tuple[tuple[str, str, str], ...] = ()
    """(action, title, redacted text) of the STOP and WARN findings, worst first."""


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


def verdict(service: Any, tag: str, record: Any, seen: str = "") -> Verdict:
    """Evaluate `record` under `tag` with the active policy (the API's own `check`), when it is analysed."""
    from ci_gate.server.service import ApiError

    if record.analysis_status != "analyzed":
        return Verdict(tag, record.digest, record.analysis_status, "", 0, 0, 0, seen)
    try:
        evaluation, analysis, *_ = service.evaluate(record.digest, tag, None)
    except ApiError as error:
        return Verdict(tag, record.digest, record.analysis_status, "", 0, 0, 0, seen, error.message)
    from ci_gate.reports.common import finding_text, finding_title, worst_first

    findings = evaluation.findings
    shown = tuple((f.effective_action.upper(), finding_title(f), finding_text(analysis, f))
                  for f in worst_first(findings) if f.effective_action.upper() in ("STOP", "WARN"))
    return Verdict(
        tag, record.digest, record.analysis_status, evaluation.final_action.upper(),
        sum(1 for f in findings if f.effective_action.upper() == "STOP"),
        sum(1 for f in findings if f.effective_action.upper() == "WARN"),
        sum(1 for f in findings if f.vulnerability is not None), seen, findings=shown)


def index(call: Any) -> HTMLResponse:
    store = call.service.store
    tags = sorted({tag for record in store.list_images() for tag, _ in record.tags})
    rows = []
    for tag in tags:
        current = store.images_for_tag(tag)
        if current:
            record = current[0]
            rows.append(verdict(call.service, tag, record, next((s for t, s in record.tags if t == tag), "")))
    images = store.list_images()
    return page("index.html.j2", rows=rows, images=images,
                counts={action: sum(1 for r in rows if r.final_action == action) for action in ("STOP", "WARN", "GO")})


def tag_history(call: Any) -> HTMLResponse:
    from ci_gate.server.service import ApiError, normalise_tag

    tag = call.query.get("tag", "")
    if not tag:
        raise ApiError(400, "the tag query parameter is required: /ui/tag?tag=HOST/REPO:TAG")
    tag = normalise_tag(tag)
    records = call.service.store.images_for_tag(tag, history=True)
    if not records:
        raise ApiError(404, f"no image has the tag {tag}")
    points = [verdict(call.service, tag, record, next((s for t, s in record.tags if t == tag), ""))
              for record in records[:HISTORY_LIMIT]]
    points.reverse()  # oldest first, left to right
    return page("tag.html.j2", tag=tag, points=points, chart=_chart(points))


def _chart(points: list[Verdict]) -> dict[str, Any]:
    """Bar heights for the vulnerability counts and STOP/WARN counts per digest, in the 600 by 220 chart."""
    top = max([p.vulnerabilities for p in points] + [p.stop + p.warn for p in points] + [1])
    step = 560 / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        x = 30 + index * step
        bars.append({"x": round(x, 1), "width": round(max(step * 0.35, 4), 1),
                     "findings": round(160 * (point.stop + point.warn) / top, 1),
                     "vulnerabilities": round(160 * point.vulnerabilities / top, 1), "point": point})
    return {"bars": bars, "top": top}


def routes(service: Any, route: Any) -> list[Route]:
    """The dashboard's pages, behind the API's authentication (`route` is the API's route wrapper)."""
    return [route("/ui/", index, ["GET"], service), route("/ui/tag", tag_history, ["GET"], service)]
