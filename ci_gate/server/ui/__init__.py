"""The dashboard of `ci-gate serve` at /ui/: images and tags with their current verdict (a page of 50 at
a time; the stored evaluation of the tag's digest under the active policy when there is one, a fresh
evaluation otherwise), and a tag's verdict history (one point per digest the tag has pointed to, from
the tag_history table), drawn as inline SVG. Server-side rendered with jinja2. The other pages (drift,
policies, expiring allowlist items, notifications) are in `pages`; the only action, activating a
policy, carries a CSRF token and goes through the API's own handler.

Every page is behind the API's authentication (the same `route` wrapper as the API), every value is
autoescaped, and the Content-Security-Policy forbids every script and every load except the one
inline style sheet, allowed by its hash, and links back to the dashboard itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse

from ci_gate.server.ui.render import page

if TYPE_CHECKING:
    from starlette.routing import Route

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
    evaluated_at: str = ""
    """When the stored evaluation shown was made; empty when the page evaluated it now."""


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


PAGE_SIZE = 50
"""Tags per page of the index."""


def stored_verdict(store: Any, tag: str, policy_id: str, record: Any, seen: str) -> Verdict | None:
    """The newest stored evaluation (table evaluation_history, written by checks and the tag watcher) of
    `record` under `tag` and the policy, as a verdict; None when there is none. The history keeps the
    engine's pass/fail only, so counts are unknown (-1) and a pass shows as PASS (GO or WARN)."""
    rows = store._query("SELECT status, evaluated_at FROM evaluation_history WHERE tag = ? AND policy_id = ? "
                        "AND digest = ? ORDER BY seq DESC LIMIT 1", (tag, policy_id, record.digest))
    if not rows:
        return None
    action = "STOP" if rows[0]["status"] == "fail" else "PASS"
    return Verdict(tag, record.digest, record.analysis_status, action, -1, -1, -1, seen,
                   evaluated_at=str(rows[0]["evaluated_at"]))


def _page_number(call: Any, name: str, default: int, top: int) -> int:
    from ci_gate.server.service import ApiError

    value = call.query.get(name, str(default))
    if not value.isdigit() or not 1 <= int(value) <= top:
        raise ApiError(400, f"{name} must be an integer from 1 to {top}")
    return int(value)


def index(call: Any) -> HTMLResponse:
    """One page of tags: a stored evaluation under the active policy when there is one, a fresh one otherwise."""
    store = call.service.store
    images = store.list_images()
    tags = sorted({tag for record in images for tag, _ in record.tags})
    per_page = _page_number(call, "per_page", PAGE_SIZE, 200)
    pages = max(1, -(-max(len(tags), len(images)) // per_page))  # the tag and image tables page together
    number = _page_number(call, "page", 1, pages)
    active = store.active_policy()
    rows = []
    for tag in tags[(number - 1) * per_page:number * per_page]:
        current = store.images_for_tag(tag)
        if current:
            record = current[0]
            seen = next((s for t, s in record.tags if t == tag), "")
            stored = stored_verdict(store, tag, active.policy_id, record, seen) if active is not None else None
            rows.append(stored or verdict(call.service, tag, record, seen))
    counts = {action: sum(1 for r in rows if r.final_action == action) for action in ("STOP", "WARN", "GO", "PASS")}
    return page("index.html.j2", rows=rows, images=images[(number - 1) * per_page:number * per_page],
                image_count=len(images), page=number, pages=pages, per_page=per_page, tag_count=len(tags),
                counts=counts)


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
    from ci_gate.server.ui import pages

    return [route("/ui/", index, ["GET"], service), route("/ui/tag", tag_history, ["GET"], service),
            *pages.routes(service, route)]
