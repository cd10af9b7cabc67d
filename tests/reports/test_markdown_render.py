"""The Markdown as GitHub renders it: each report through a GFM renderer (markdown-it-py's gfm-like preset,
the CommonMark + GFM tables/strikethrough GitHub uses), then its HTML checked for structure: tables that
stay tables, one cell per column in every row, fenced fixes as diff blocks, collapsed sections, the guide
link, and no HTML from a finding's text."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from report_samples import SECRET_VALUE, sample_analysis, sample_evaluation

from ci_gate.model import Distro
from ci_gate.reports.markdown import render_markdown


def github_html(markdown: str) -> str:
    # GitHub autolinks bare URLs too; linkify needs an extra package and changes no structure checked here.
    return MarkdownIt("gfm-like", {"linkify": False}).render(markdown)


class Structure(HTMLParser):
    """Tables (their header width and every row's cell count), code blocks by language, tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, list[int]]] = []
        self.code_languages: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self._cells = 0
        self._section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):
            self._cells += 1
        elif tag == "code" and (attributes.get("class") or "").startswith("language-"):
            self.code_languages.append(str(attributes["class"])[len("language-"):])
        elif tag == "a":
            self.links.append(attributes.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.tables:
            self.tables[-1]["head" if self._section == "thead" else "rows"].append(self._cells)


def structure(markdown: str) -> Structure:
    parser = Structure()
    parser.feed(github_html(markdown))
    return parser


@pytest.mark.parametrize("kind", ["comment", "summary", "compliance"])
def test_every_report_renders_as_intact_tables(kind):
    parsed = structure(render_markdown(sample_evaluation(), sample_analysis(), kind))
    assert parsed.tables
    for table in parsed.tables:
        [width] = table["head"]
        assert table["rows"] and all(cells == width for cells in table["rows"]), table
    assert any(link.endswith("docs/fixing-findings.md") for link in parsed.links)
    assert "script" not in parsed.tags and "img" not in parsed.tags


def test_comment_structure_headline_fixes_and_sections():
    markdown = render_markdown(sample_evaluation(), sample_analysis(), "comment")
    html = github_html(markdown)
    parsed = structure(markdown)
    assert parsed.tags[0] == "h3" and "<strong>STOP</strong>" in html
    # the issues table: the "How to fix" column holds the advice, code spans kept as code
    assert "<th>How to fix</th>" in html
    assert "<code>RUN apt-get update &amp;&amp; apt-get install -y --only-upgrade xz-utils</code>" in html
    # the Dockerfile fix: the line and its replacement as a diff block
    assert parsed.code_languages.count("diff") >= 1
    assert "- EXPOSE 22 8080\n+ EXPOSE 8080" in html
    assert "<details>" in html and "<summary>" in html
    assert SECRET_VALUE not in html


def test_hostile_finding_text_stays_text():
    evaluation = sample_evaluation()
    hostile = evaluation.findings[0].__class__(
        gate="dockerfile", trigger="instruction", trigger_id="x", action="STOP",
        message="<script>alert(1)</script> | `x` ```suggestion [link](javascript:alert(1))",
        recommendation="<img src=x onerror=alert(1)> | ``` break the fence",
    )
    evaluation = evaluation.__class__(**{**{f: getattr(evaluation, f) for f in evaluation.__dataclass_fields__},
                                         "findings": (hostile,)})
    for kind in ("comment", "summary", "compliance"):
        parsed = structure(render_markdown(evaluation, sample_analysis(), kind))
        assert "script" not in parsed.tags and "img" not in parsed.tags
        assert not [link for link in parsed.links if link.startswith("javascript")]
        for table in parsed.tables:
            assert all(cells == table["head"][0] for cells in table["rows"])


def test_summary_names_the_distribution_once():
    analysis = sample_analysis()
    analysis = analysis.__class__(**{**{f: getattr(analysis, f) for f in analysis.__dataclass_fields__},
                                     "distro": Distro(id="debian", version_id="12", name="Debian GNU/Linux",
                                                      pretty_name="Debian GNU/Linux 12 (bookworm)")})
    summary = render_markdown(sample_evaluation(), analysis, "summary")
    assert "Distribution: Debian GNU/Linux 12 (bookworm) ·" in summary
    assert "(bookworm) 12" not in summary
