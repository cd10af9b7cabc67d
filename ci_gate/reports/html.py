"""The HTML report (`gate --html FILE`): one self-contained page for people who would rather look than read.

What a reader sees, in order: the verdict, the STOP findings with their fixes, the WARNs, the findings
covered by exceptions (reason, approver, expiry), the vulnerabilities by severity (fixed versions, base
or app layer), the compliance view (guide section → status → evidence → controls, STIG CAT I/II/III
when the policy has STIG rules), the layers with what each added (an inline-SVG bar chart), and the
image's identity.

The page needs nothing but itself: no network, no fonts, no script at all. Its Content-Security-Policy
(a meta tag) forbids every script and every external load, and allows exactly the one inline style
sheet by its hash, so a finding's text can neither run code nor make a request even if escaping failed.
Every value goes through jinja2 autoescape; links are made only from http(s) URLs. The context is the
Markdown reports' (`markdown_context`: plain, already-redacted values) plus the views below.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import importlib.util
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from ci_gate.model import Analysis, Evaluation, Finding
from ci_gate.reports.common import SEVERITY_ORDER, finding_title, security_score, severity_of, worst_first
from ci_gate.reports.html_environment import (
    COMPILED_MODULE,
    TEMPLATE_NAME,
    TEMPLATES,
    html_environment,
    source_sha256,
)
from ci_gate.reports.markdown_context import FindingView, markdown_context

STYLE_FILE = TEMPLATES / "report.css"

_STIG_CATEGORY = re.compile(r"\((CAT I{1,3})\b")


@dataclass(frozen=True)
class VulnerabilityRow:
    """One vulnerability match as the report's table shows it."""

    id: str
    url: str
    """A link target: an http(s) URL only, else empty (then the id is plain text)."""
    severity: str
    score: str
    package: str
    version: str
    fixed: str
    origin: str
    """base or app (the layer that added the package), or empty when unknown."""
    action: str
    """STOP, WARN or GO (covered by an exception)."""


@dataclass(frozen=True)
class LayerRow:
    """One image layer and what it added."""

    index: int
    created_by: str
    size: int
    size_text: str
    origin: str
    """base, app or empty when the base image is unknown."""
    packages: int
    findings: int
    """STOP and WARN findings tied to this layer."""
    bar: float
    """The bar's length in the chart, 0 … 1 of the largest layer."""


@dataclass(frozen=True)
class StigRow:
    """A STIG finding with its DISA category."""

    category: str
    action: str
    title: str
    text: str


def safe_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL, else empty: a report never links to `javascript:`, `data:`
    or a relative path a finding made up."""
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c in text for c in "\x00\r\n\t "):
        return ""
    return text


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _vulnerabilities(evaluation: Evaluation) -> dict[str, list[VulnerabilityRow]]:
    by_severity: dict[str, list[VulnerabilityRow]] = {}
    for finding in worst_first(f for f in evaluation.findings if f.vulnerability is not None):
        vulnerability = finding.vulnerability
        assert vulnerability is not None
        score = security_score(finding)
        by_severity.setdefault(severity_of(finding), []).append(VulnerabilityRow(
            id=vulnerability.id, url=safe_url(vulnerability.url), severity=severity_of(finding),
            score=f"{score:.1f}" if score is not None else "", package=vulnerability.package_name,
            version=vulnerability.package_version, fixed=", ".join(vulnerability.fixed_versions),
            origin=finding.origin or "", action=finding.effective_action.upper()))
    return {severity: by_severity[severity] for severity in SEVERITY_ORDER if severity in by_severity}


def _layers(evaluation: Evaluation, analysis: Analysis) -> list[LayerRow]:
    layers = analysis.identity.layers
    packages = {layer.index: 0 for layer in layers}
    for package in analysis.packages:
        for index in {location.layer_index for location in package.locations}:
            if index in packages:
                packages[index] += 1
    findings = {layer.index: 0 for layer in layers}
    for finding in evaluation.findings:
        if finding.layer_index in findings and finding.effective_action.upper() in ("STOP", "WARN"):
            findings[finding.layer_index] += 1
    largest = max((layer.size for layer in layers), default=0) or 1
    return [
        LayerRow(layer.index, layer.created_by, layer.size, human_size(layer.size),
                 "" if layer.base is None else ("base" if layer.base else "app"), packages[layer.index],
                 findings[layer.index], layer.size / largest)
        for layer in layers
    ]


def _stig(evaluation: Evaluation, analysis: Analysis, views: list[FindingView]) -> dict[str, Any] | None:
    """The STIG findings by DISA category, when the policy has STIG rules (else None: no STIG section)."""
    if not any(rule.gate == "stig" for rule in evaluation.rules) and not any(
            f.gate == "stig" for f in evaluation.findings):
        return None
    rows = []
    for finding in worst_first(f for f in evaluation.findings if f.gate == "stig"):
        match = _STIG_CATEGORY.search(finding.message)
        rows.append(StigRow(match.group(1) if match else "not evaluated", finding.effective_action.upper(),
                            finding_title(finding), _text_of(finding, views)))
    totals = {category: sum(1 for row in rows if row.category == category) for category in ("CAT I", "CAT II",
                                                                                             "CAT III")}
    return {"rows": rows, "totals": totals}


def _text_of(finding: Finding, views: list[FindingView]) -> str:
    title = finding_title(finding)
    return next((view.text for view in views if view.title == title and view.rule_id == finding.rule_id), "")


def html_context(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    """The Markdown reports' context (already redacted) plus the HTML report's own views."""
    context = markdown_context(evaluation, analysis)
    identity = analysis.identity
    layers = _layers(evaluation, analysis)
    context.update(
        vulnerabilities=_vulnerabilities(evaluation),
        layers=layers,
        stig=_stig(evaluation, analysis, context["findings"] + context["allowlisted"]),
        identity={
            "reference": identity.reference, "tag": evaluation.tag,
            "manifest_digest": identity.manifest_digest or "", "config_digest": identity.config_digest or "",
            "repo_tags": ", ".join(identity.repo_tags), "repo_digests": ", ".join(identity.repo_digests),
            "platform": identity.platform, "created": identity.created,
            "size": human_size(identity.total_size or sum(layer.size for layer in layers)),
            "packages": len(analysis.packages), "base_image": analysis.dockerfile.base_image,
        },
        guide_link=safe_url(context["guide_url"]),
    )
    return context


@functools.lru_cache(maxsize=1)
def _style() -> tuple[str, str]:
    """The one inline style sheet and its CSP source (`'sha256-…'` of exactly the text between the tags)."""
    css = STYLE_FILE.read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"'sha256-{digest}'"


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """The template as the wheel build compiled it (`html_environment`) when it matches the template's source,
    else the source compiled now: a source checkout has no compiled module, and an edited template is never
    rendered from stale code, only more slowly."""
    environment = html_environment()
    compiled_name = f"{__package__}.{COMPILED_MODULE}"
    if importlib.util.find_spec(compiled_name) is not None:
        compiled = importlib.import_module(compiled_name)
        if getattr(compiled, "SOURCE_SHA256", "") == source_sha256():
            return environment.template_class.from_module_dict(environment, vars(compiled),
                                                               environment.make_globals(None))
    return environment.get_template(TEMPLATE_NAME)


def render_html(evaluation: Evaluation, analysis: Analysis) -> str:
    """The HTML report: one self-contained page (see the module docstring)."""
    css, style_source = _style()
    csp = (f"default-src 'none'; style-src {style_source}; script-src 'none'; "
           "base-uri 'none'; form-action 'none'")
    return _template().render(**html_context(evaluation, analysis), css=Markup(css), csp=csp)

