"""The verdict in the terminal: what is checked first, what to fix next, the decision last.

A developer whose build just stopped reads the end of the log first, so the output ends with ONE
line that says the decision and why (`STOP: 3 findings must be fixed before this image can be pushed
(2 secrets, 1 port)`). Above it: a compact table of the STOP problems, each with its fix (findings that
share a cause merged into one row naming every rule it satisfies), then the WARN problems grouped by
kind and counted, then what could not be checked, notes and the reports written. Paths are never
cut (cells wrap). Trigger ids and allowlisted (GO) rows are shown only with `--verbose`.

`render_plain` is for CI logs and pipes (no colours, no wrapping); `render_rich` for a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ci_gate.model import Analysis, Evaluation
from ci_gate.redaction import terminal_line
from ci_gate.reports.advice_table import rule_advice
from ci_gate.reports.common import secret_for
from ci_gate.reports.issues import Issue, category_counts, category_name, issue_recommendation, issue_title, issues
from ci_gate.reports.unchecked import unchecked_rules

if TYPE_CHECKING:
    from rich.console import Console


class Verdict(Protocol):
    """What the terminal shows of a gate run (`ci_gate.gate.GateResult` is one)."""

    @property
    def analysis(self) -> Analysis: ...
    @property
    def evaluation(self) -> Evaluation: ...
    @property
    def written(self) -> tuple[Path, ...]: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def notes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Row:
    """One line of the verdict table: a problem (or a group of WARN problems) and its fix."""

    action: str
    what: str
    """What is wrong, where (paths whole)."""
    fix: str
    rules: tuple[str, ...]
    """Every policy rule the problem fires."""
    trigger_ids: tuple[str, ...] = ()


def header_line(result: Verdict, policy: str = "") -> str:
    """The first line: which image is checked against which policy."""
    evaluation, analysis = result.evaluation, result.analysis
    image = analysis.identity.reference
    tag = evaluation.tag
    shown = f"{image} ({tag})" if tag and tag not in image else image
    policy_text = policy or evaluation.policy_name or evaluation.policy_id
    if policy and not policy.startswith("builtin:") and evaluation.policy_name and evaluation.policy_name not in policy:
        policy_text = f"{policy} ({evaluation.policy_name})"
    return f"ci-gate: checking {shown} against {policy_text}: {len(evaluation.rules)} rules"


def _in_force(evaluation: Evaluation, analysis: Analysis) -> list[Issue]:
    return issues([f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")], analysis)


def verdict_line(result: Verdict, width: int | None = None) -> str:
    """The last line: the decision, how many problems stand between the image and the registry, of which
    kinds. With `width` (a terminal), the kinds and the extras are shortened so it stays one line."""
    evaluation, analysis = result.evaluation, result.analysis
    found = _in_force(evaluation, analysis)
    stops = [i for i in found if i.action == "STOP"]
    warns = [i for i in found if i.action == "WARN"]
    final = evaluation.final_action.upper()
    blocked = result.exit_code != 0
    unchecked = unchecked_rules(evaluation, analysis)
    extras = []
    if unchecked:
        extras.append(f"{len(unchecked)} rule{'s' if len(unchecked) != 1 else ''} could not be checked")
    if final == "STOP" and evaluation.final_action_reason in ("denylisted", "blacklisted"):
        rule = f" ({evaluation.matched_image_rule})" if evaluation.matched_image_rule else ""
        return f"STOP: the policy denylists this image{rule}; it must not be pushed"
    if final == "STOP":
        count = len(stops)
        head = f"STOP: {count} finding{'s' if count != 1 else ''} must be fixed before this image can be pushed"
        tail = " (--fail-on never: the build continues)" if not blocked else ""
        if warns:
            extras.insert(0, f"{len(warns)} warning{'s' if len(warns) != 1 else ''}")
        return _fit(head, stops, tail, extras, width)
    if final == "WARN":
        count = len(warns)
        plural = "s" if count != 1 else ""
        if blocked:
            head = f"WARN: {count} finding{plural} must be fixed before this image can be pushed"
            return _fit(head, warns, " (--fail-on warn)", extras, width)
        return _fit(f"WARN: the image may be pushed; {count} warning{plural} should be fixed", warns, "", extras,
                    width)
    if evaluation.final_action_reason in ("allowlisted", "whitelisted"):
        return _fit("GO: the policy allowlists this image; it may be pushed", [], "", extras, width)
    covered = sum(1 for f in evaluation.findings if f.allowlisted)
    exceptions = f", {covered} covered by exceptions" if covered else ""
    total = len(evaluation.rules)
    checked = f"{total - len(unchecked)} of {total} rules checked" if unchecked else f"{total} rules checked"
    return f"GO: the image may be pushed ({checked}{exceptions})"


def _fit(head: str, counted: list[Issue], tail: str, extras: list[str], width: int | None) -> str:
    """`head (2 secrets, 1 port)tail; extra; extra`, dropping what does not fit in `width` (kinds become …)."""
    kinds = [part for part in category_counts(counted).split(", ") if part]

    def text(shown: int, extra_count: int) -> str:
        listed = kinds[:shown] + (["…"] if shown < len(kinds) else [])
        line = head + (f" ({', '.join(listed)})" if listed else "") + tail
        return line + "".join(f"; {extra}" for extra in extras[:extra_count])

    if width is None:
        return text(len(kinds), len(extras))
    for extra_count in range(len(extras), -1, -1):
        for shown in range(len(kinds), -1, -1):
            fits = len(text(shown, extra_count)) <= width or (shown == 0 and extra_count == 0)
            # Extras only when every kind is listed: the kinds matter more than the extras.
            if fits and (shown == len(kinds) or extra_count == 0):
                return text(shown, extra_count)
    return text(0, 0)


def _where(issue: Issue, analysis: Analysis) -> str:
    """An in-image path the title does not already name (Dockerfile lines are named by the fix)."""
    for finding in issue.findings:
        if finding.path and finding.path not in issue_title(issue, analysis):
            return finding.path
    return ""


def _issue_row(issue: Issue, analysis: Analysis) -> Row:
    title = issue_title(issue, analysis)
    where = _where(issue, analysis)
    what = title + (f" ({where})" if where else "")
    if issue.action == "GO" and issue.first.allowlisted is not None:
        match = issue.first.allowlisted
        what += f" [exception {match.allowlist_id}/{match.item_id}: {match.reason or 'no reason given'}]"
    return Row(issue.action, what, issue_recommendation(issue, analysis), issue.rules,
               tuple(dict.fromkeys(f.trigger_id for f in issue.findings)))


def rows(result: Verdict, verbose: bool = False) -> list[Row]:
    """STOP problems one per row (rows with the same fix joined), then WARN problems grouped by kind; with
    `verbose`, every problem on its own row and the allowlisted ones too."""
    evaluation, analysis = result.evaluation, result.analysis
    found = _in_force(evaluation, analysis)
    if verbose:
        allowlisted = issues([f for f in evaluation.findings if f.allowlisted is not None], analysis)
        return [_issue_row(issue, analysis) for issue in [*found, *allowlisted]]
    result_rows: list[Row] = []
    stops = [i for i in found if i.action == "STOP"]
    position = 0
    while position < len(stops):
        # Problems with the same fix (two secrets in one file) share a row.
        same = [stops[position]]
        fix = issue_recommendation(stops[position], analysis)
        while position + len(same) < len(stops) and issue_recommendation(stops[position + len(same)], analysis) == fix:
            same.append(stops[position + len(same)])
        position += len(same)
        if len(same) == 1:
            result_rows.append(_issue_row(same[0], analysis))
            continue
        rules = tuple(dict.fromkeys(rule for issue in same for rule in issue.rules))
        result_rows.append(Row("STOP", _joined_what(same, analysis), fix, rules))
    by_category: dict[str, list[Issue]] = {}
    for issue in (i for i in found if i.action == "WARN"):
        by_category.setdefault(issue.category, []).append(issue)
    for members in by_category.values():
        if len(members) == 1:
            result_rows.append(_issue_row(members[0], analysis))
            continue
        fixes = {issue_recommendation(issue, analysis) for issue in members}
        first = members[0].first
        fix = fixes.pop() if len(fixes) == 1 else rule_advice(first.gate, first.trigger, first.recommendation)
        rules = tuple(dict.fromkeys(rule for issue in members for rule in issue.rules))
        result_rows.append(Row("WARN", _joined_what(members, analysis), fix, rules))
    return result_rows


def _joined_what(members: list[Issue], analysis: Analysis) -> str:
    """`2 secrets in /root/.aws/credentials (AWS_ACCESS_KEY line 2, …)`, `5 labels: org.opencontainers.image.{…}`."""
    count = len(members)
    heading = f"{count} {category_name(members[0].category, count)}" if len({m.category for m in members}) == 1 \
        else f"{count} problems"
    secrets = [secret_for(analysis, m.first) for m in members]
    if all(secrets) and len({s.path for s in secrets if s}) == 1:
        found = ", ".join(f"{s.rule}" + (f" line {s.line}" if s.line else "") for s in secrets if s)
        return f"{heading} in {secrets[0].path if secrets[0] else ''} ({found})"
    vulnerabilities = [m.first.vulnerability for m in members]
    if all(vulnerabilities) and len({(v.package_name, v.package_version) for v in vulnerabilities if v}) == 1:
        first = vulnerabilities[0]
        assert first is not None
        ids = ", ".join(v.id for v in vulnerabilities if v)
        return f"{heading} in {first.package_name} {first.package_version} ({ids})"
    names = [_short(issue_title(m, analysis)) for m in members]
    prefix = _common_prefix(names)
    if prefix and len(prefix) > 8:
        return f"{heading}: {prefix}{{{', '.join(name[len(prefix):] for name in names)}}}"
    return f"{heading}: {', '.join(names)}"


def _common_prefix(names: list[str]) -> str:
    """The dotted prefix all names share (`org.opencontainers.image.`), or ''."""
    if len(names) < 2:
        return ""
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix[: prefix.rfind(".") + 1] if "." in prefix else ""


def _short(title: str) -> str:
    """A grouped title without the words the group heading already says."""
    for prefix in ("Missing label ", "Denied package ", "setuid/setgid file "):
        if title.startswith(prefix):
            return title[len(prefix):]
    return title


def _tail(result: Verdict, verbose: bool) -> list[str]:
    evaluation = result.evaluation
    lines = []
    unchecked = unchecked_rules(evaluation, result.analysis)
    for rule in evaluation.rules:
        if rule.rule_id in unchecked:
            what = f"{rule.rule_id} ({rule.gate}/{rule.trigger})" if verbose else rule.rule_id
            lines.append(f"not checked: {what}: {unchecked[rule.rule_id]}")
    for expired in evaluation.expired_exceptions:
        lines.append(f"EXPIRED EXCEPTION: allowlist {expired.allowlist_id} item {expired.item_id} ({expired.gate} "
                     f"{expired.trigger_id}) expired {expired.expires_on}"
                     + (f"; reason was: {expired.reason}" if expired.reason else ""))
    expired_ids = {e.item_id for e in evaluation.expired_exceptions}
    for warning in evaluation.warnings:
        if warning.startswith("EXPIRED exception") and any(f"'{i}'" in warning for i in expired_ids):
            continue
        if any(warning.startswith(f"rule '{rule_id}'") for rule_id in unchecked):
            continue  # already said on its "not checked" line
        lines.append(f"warning: {warning}")
    for note in result.notes:
        lines.append(f"note: {note}")
    if result.written:
        lines.append("wrote " + ", ".join(str(path) for path in result.written))
    if not verbose:
        covered = sum(1 for f in evaluation.findings if f.allowlisted)
        if covered:
            lines.append(f"{covered} finding{'s' if covered != 1 else ''} covered by exceptions (--verbose lists them)")
    return lines


def render_plain(result: Verdict, verbose: bool = False, policy: str = "") -> str:
    """Plain lines for CI logs and pipes, the decision on the last line."""
    lines = [header_line(result, policy)]
    for row in rows(result, verbose):
        rules = f" [rules: {', '.join(row.rules)}]" if row.rules else ""
        what_lines = row.what.split("\n")
        lines.append(f"{row.action:<5} {what_lines[0]}{rules}")
        lines.extend(f"      {extra}" for extra in what_lines[1:])
        if verbose and row.trigger_ids:
            lines.append(f"      trigger ids: {', '.join(row.trigger_ids)}")
        lines.append(f"      fix: {row.fix}")
    lines += _tail(result, verbose)
    lines.append(verdict_line(result))
    # The tag, the image path and messages are anyone's text: one terminal line each, no CI command.
    return "\n".join(terminal_line(line) for line in lines) + "\n"


_COLOUR = {"STOP": "bold red", "WARN": "yellow", "GO": "green"}


def render_rich(result: Verdict, verbose: bool = False, policy: str = "", console: Console | None = None
                ) -> None:
    """The same verdict for a terminal: one compact table (cells wrap, nothing is cut), the decision last."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def safe(text: str) -> str:  # image and server text: no control characters, no rich markup
        return escape(terminal_line(text))

    console = console or Console(highlight=False)
    console.print(safe(header_line(result, policy)), style="bold", highlight=False)
    table_rows = rows(result, verbose)
    if table_rows:
        # No header or borders: every line of a 30-line terminal is worth a finding.
        table = Table(box=None, show_header=False, pad_edge=False, expand=True, padding=(0, 1))
        table.add_column("", no_wrap=True, width=4)
        table.add_column("What (rules)", ratio=1, overflow="fold")
        table.add_column("How to fix", ratio=1, overflow="fold")
        for row in table_rows:
            what = "\n".join(safe(part) for part in row.what.split("\n"))
            if row.rules:
                what += f" [dim]({safe(', '.join(row.rules))})[/]"
            if verbose and row.trigger_ids:
                what += f"\n[dim]id {safe(', '.join(row.trigger_ids))}[/]"
            table.add_row(f"[{_COLOUR.get(row.action, '')}]{row.action}[/]", what,
                          _advice_markup(terminal_line(row.fix)))
        console.print(table)
    for line in _tail(result, verbose):
        style = "bold yellow" if line.startswith(("EXPIRED", "not checked")) else "dim"
        console.print(safe(line), style=style, highlight=False)
    final = result.evaluation.final_action.upper()
    console.print(safe(verdict_line(result, width=console.width)), style=_COLOUR.get(final, "bold"),
                  highlight=False)


def _advice_markup(text: str) -> str:
    """`code` spans of a recommendation in cyan, the rest as is (escaped for rich markup)."""
    from rich.markup import escape

    parts = text.split("`")
    return "".join(escape(part) if index % 2 == 0 else f"[cyan]{escape(part)}[/]" for index, part in
                   enumerate(parts))
