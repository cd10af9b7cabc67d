"""`ci-gate gate IMAGE ...`: settings from flags, CI_GATE_* variables and .ci-gate.yaml; a clear verdict.

Precedence: a command-line flag, then the `CI_GATE_<OPTION>` environment variable (e.g.
`CI_GATE_FAIL_ON=warn`), then `.ci-gate.yaml` in the working directory (keys are the long option
names, with `-` or `_`), then the default. The command only parses, calls `gate.run_gate` and prints.
"""

# No `from __future__ import annotations`: typer reads the annotations of `gate`, which use option
# types imported inside `register` (importing ci_gate.cli at module level would be circular).

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.errors import CiGateError, UsageError, quoted
from ci_gate.gate import EXIT_PASS, GateOptions, GateResult, ReportTargets, run_gate
from ci_gate.model import ACTIONS, Analysis, Evaluation, Finding
from ci_gate.redaction import terminal_line

if TYPE_CHECKING:
    from ci_gate.backends.interface import AnchoreOptions

CONFIG_FILE = ".ci-gate.yaml"

SETTINGS = {
    "image": None, "policy": "builtin:default", "dockerfile": None, "tag": None, "backend": "local",
    "vuln-db": None, "json": None, "junit": None, "sarif": None, "gitlab-report": None, "codequality": None,
    "markdown": None, "compliance": None, "template": None, "comment": "off", "fail-on": "stop",
    "on-error": "fail", "base-image": None, "platform": None, "insecure-registry": None, "ca-bundle": None,
    "no-cache": False, "vex": None, "secret-rules": None,
    "anchore-url": None, "anchore-user": None, "anchore-account": None, "anchore-policy-id": None,
    "timeout": None, "poll-interval": None, "force": False,
}
"""Every setting the gate reads, by long option name, with its default."""

LIST_SETTINGS = ("insecure-registry", "vex")
"""Settings that may be given several times (comma-separated in a CI_GATE_* variable)."""

CHOICES = {"backend": ("local", "anchore"), "comment": ("auto", "github", "gitlab", "off"),
           "fail-on": ("stop", "warn", "never"), "on-error": ("fail", "pass")}


MAX_CONFIG_CHARS = 1024 * 1024
"""`.ci-gate.yaml` is a few lines of settings; a megabyte is not a settings file."""


def load_config_file(directory: Path) -> dict[str, Any]:
    """The settings of `.ci-gate.yaml` (a flat mapping, or one under a `gate:` key)."""
    path = directory / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        text = path.read_text("utf-8")
        check_shape(text, str(path), MAX_CONFIG_CHARS)
        data = yaml.safe_load(text) or {}
    except (YamlLimitError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: {error}" if isinstance(error, YamlLimitError)
                         else f"{path}: {CONFIG_FILE} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: invalid YAML in {CONFIG_FILE}: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: {CONFIG_FILE} must be a mapping of option names to values")
    if isinstance(data.get("gate"), dict):
        data = {**{k: v for k, v in data.items() if k != "gate"}, **data["gate"]}
    settings = {}
    for key, value in data.items():
        name = str(key).replace("_", "-")
        if name not in SETTINGS:
            close = difflib.get_close_matches(name, list(SETTINGS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"{path}: unknown setting {quoted(str(key))}{hint}; settings: {', '.join(SETTINGS)}")
        settings[name] = value
    return settings


def resolve(flags: Mapping[str, Any], environment: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """Flags win over CI_GATE_* variables, which win over .ci-gate.yaml, which wins over defaults."""
    resolved: dict[str, Any] = {}
    for name, default in SETTINGS.items():
        env_name = "CI_GATE_" + name.upper().replace("-", "_")
        flag = flags.get(name)
        if flag is not None and flag != [] and not (isinstance(default, bool) and flag is False):
            value: Any = flag
        elif environment.get(env_name, "") != "":
            value = environment[env_name]
            if isinstance(default, bool):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            elif name in LIST_SETTINGS:
                value = [item.strip() for item in value.split(",") if item.strip()]
        elif name in config and config[name] is not None:
            value = config[name]
            if name in LIST_SETTINGS and isinstance(value, str):
                value = [value]
        else:
            value = default
        if name in CHOICES and value is not None and str(value) not in CHOICES[name]:
            raise UsageError(f"{name} {value!r} is not valid; use one of {', '.join(CHOICES[name])}")
        resolved[name] = value
    return resolved


def _path(value: Any) -> Path | None:
    return Path(str(value)) if value not in (None, "") else None


def build_options(settings: Mapping[str, Any]) -> GateOptions:
    from ci_gate.cli import source_options

    if not settings.get("image"):
        raise UsageError("no image given: pass IMAGE, set CI_GATE_IMAGE, or put image: in .ci-gate.yaml")
    insecure = settings.get("insecure-registry")
    return GateOptions(
        image=str(settings["image"]),
        policy=str(settings["policy"]),
        dockerfile=_path(settings["dockerfile"]),
        tag=settings["tag"] or None,
        backend=str(settings["backend"]),
        vuln_db=_path(settings["vuln-db"]),
        fail_on=str(settings["fail-on"]),
        on_error=str(settings["on-error"]),
        comment=str(settings["comment"]),
        reports=ReportTargets(
            json=_path(settings["json"]), junit=_path(settings["junit"]), sarif=_path(settings["sarif"]),
            gitlab_report=_path(settings["gitlab-report"]), codequality=_path(settings["codequality"]),
            markdown=_path(settings["markdown"]), compliance=_path(settings["compliance"]),
            template=_path(settings["template"]),
        ),
        source=source_options(settings.get("platform"), list(insecure) if insecure else None,
                              _path(settings.get("ca-bundle")), image=str(settings["image"])),
        use_cache=not bool(settings["no-cache"]),
        base_image=settings["base-image"] or None,
        vex=tuple(Path(str(item)) for item in settings.get("vex") or ()),
        secret_rules=_path(settings.get("secret-rules")),
        anchore=_anchore_options(settings),
    )


def _seconds(settings: Mapping[str, Any], name: str) -> float | None:
    value = settings.get(name)
    if value in (None, ""):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} {value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UsageError(f"{name} {value!r} must be more than 0 seconds")
    return seconds


def _anchore_options(settings: Mapping[str, Any]) -> "AnchoreOptions":
    """The anchore backend's connection; the password only from --anchore-password or the environment
    (never .ci-gate.yaml, which is committed), and anything unset falls back to ANCHORE_*/ANCHORECTL_*."""
    from ci_gate.backends.interface import AnchoreOptions

    def text(name: str) -> str | None:
        value = settings.get(name)
        return str(value) if value not in (None, "") else None

    return AnchoreOptions(
        url=text("anchore-url"), username=text("anchore-user"),
        password=settings.get("anchore-password") or os.environ.get("CI_GATE_ANCHORE_PASSWORD") or None,
        account=text("anchore-account"), policy_id=text("anchore-policy-id"),
        timeout=_seconds(settings, "timeout"), poll_interval=_seconds(settings, "poll-interval"),
        force=bool(settings.get("force")),
    )


# --- the terminal verdict --------------------------------------------------------------------------

_RANK = {action: index for index, action in enumerate(reversed(ACTIONS))}
"""STOP 0, WARN 1, GO 2: worst first."""


def _text(analysis: Analysis, finding: Finding) -> str:
    try:
        from ci_gate.reports.common import finding_text
    except ImportError:
        return finding.message
    return finding_text(analysis, finding)


def grouped(evaluation: Evaluation) -> list[tuple[str, str, list[Finding]]]:
    """(gate, worst effective action, findings worst first), gates worst first."""
    by_gate: dict[str, list[Finding]] = {}
    for finding in evaluation.findings:
        by_gate.setdefault(finding.gate, []).append(finding)
    groups = []
    for gate, findings in by_gate.items():
        findings.sort(key=lambda f: (_RANK[f.effective_action], f.trigger, f.message))
        groups.append((gate, findings[0].effective_action, findings))
    groups.sort(key=lambda group: (_RANK[group[1]], group[0]))
    return groups


def _where(finding: Finding) -> str:
    parts = []
    if finding.path:
        parts.append(finding.path)
    if finding.dockerfile_line is not None:
        parts.append(f"Dockerfile:{finding.dockerfile_line}")
    if finding.origin:
        parts.append(f"{finding.origin} layer")
    return ", ".join(parts)


def _label(finding: Finding) -> str:
    if finding.allowlisted:
        return f"GO (allowlisted; was {finding.action})"
    return finding.action


def _summary(result: GateResult) -> list[str]:
    evaluation = result.evaluation
    counts = {action: sum(1 for f in evaluation.findings if f.effective_action == action) for action in ACTIONS}
    allowlisted = sum(1 for f in evaluation.findings if f.allowlisted)
    reason = "" if evaluation.final_action_reason == "policy_evaluation" else f" ({evaluation.final_action_reason}"\
        f"{': ' + evaluation.matched_image_rule if evaluation.matched_image_rule else ''})"
    return [
        f"{evaluation.final_action}{reason}  {result.analysis.identity.reference}",
        f"policy {evaluation.policy_name or evaluation.policy_id}, mapping "
        f"{evaluation.matched_mapping or '(none)'}, tag {evaluation.tag or '-'}",
        f"findings: {counts['STOP']} STOP, {counts['WARN']} WARN, {counts['GO']} GO, {allowlisted} allowlisted; "
        f"{len(evaluation.rules)} rules checked",
    ]


def render_plain(result: GateResult) -> str:
    """Plain lines (CI logs, pipes)."""
    lines = [f"ci-gate: {line}" for line in _summary(result)]
    for gate, worst, findings in grouped(result.evaluation):
        lines.append(f"[{worst}] {gate} ({len(findings)})")
        for finding in findings:
            where = _where(finding)
            lines.append(f"  {_label(finding):<5} {finding.trigger}: {_text(result.analysis, finding)}"
                         + (f" [{where}]" if where else "") + f" (rule {finding.rule_id}, id {finding.trigger_id})")
    lines += _tail(result)
    # The tag, the image path and messages are anyone's text: one terminal line each, no CI command.
    return "\n".join(terminal_line(line) for line in lines) + "\n"


def _tail(result: GateResult) -> list[str]:
    lines = []
    for expired in result.evaluation.expired_exceptions:
        lines.append(f"EXPIRED EXCEPTION: allowlist {expired.allowlist_id} item {expired.item_id} ({expired.gate} "
                     f"{expired.trigger_id}) expired {expired.expires_on}"
                     + (f"; reason was: {expired.reason}" if expired.reason else ""))
    expired_ids = {e.item_id for e in result.evaluation.expired_exceptions}
    for warning in result.evaluation.warnings:
        if warning.startswith("EXPIRED exception") and any(f"'{i}'" in warning for i in expired_ids):
            continue
        lines.append(f"warning: {warning}")
    for note in result.notes:
        lines.append(f"note: {note}")
    for path in result.written:
        lines.append(f"wrote {path}")
    return lines


def render_rich(result: GateResult) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def safe(text: str) -> str:  # image and server text: no control characters, no rich markup
        return escape(terminal_line(text))

    console = Console()
    colour = {"STOP": "bold red", "WARN": "bold yellow", "GO": "bold green"}
    summary = _summary(result)
    console.print(f"[{colour[result.evaluation.final_action]}]{safe(summary[0])}[/]")
    for line in summary[1:]:
        console.print(safe(line), highlight=False)
    for gate, _worst, findings in grouped(result.evaluation):
        table = Table(title=f"{gate} ({len(findings)})", title_justify="left", show_lines=False, expand=True)
        table.add_column("Action", no_wrap=True)
        table.add_column("Trigger", no_wrap=True)
        table.add_column("Message", ratio=3)
        table.add_column("Where", ratio=1)
        table.add_column("Rule", no_wrap=True)
        for finding in findings:
            table.add_row(f"[{colour[finding.effective_action]}]{_label(finding)}[/]", safe(finding.trigger),
                          safe(_text(result.analysis, finding)), safe(_where(finding)), safe(finding.rule_id))
        console.print(table)
    for line in _tail(result):
        console.print(safe(line), highlight=False, style="bold yellow" if line.startswith("EXPIRED") else None)


def _interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


def register(app: typer.Typer) -> None:
    """Add the `gate` command to the root app."""

    from ci_gate.cli import CaBundleOption, InsecureOption, NoCacheOption, PlatformOption

    @app.command()
    def gate(
        image: Annotated[str | None, typer.Argument(help="The image: SCHEME:LOCATION or a path/reference.")] = None,
        policy: Annotated[str | None, typer.Option("--policy", help="Policy file or builtin:NAME "
                                                      "(default builtin:default).")] = None,
        dockerfile: Annotated[Path | None, typer.Option("--dockerfile", help="The Dockerfile the image was built "
                                                           "from.")] = None,
        tag: Annotated[str | None, typer.Option("--tag", help="The tag policy mappings match on.")] = None,
        backend: Annotated[str | None, typer.Option("--backend", help="local or anchore.")] = None,
        vuln_db: Annotated[Path | None, typer.Option("--vuln-db", help="Vulnerability database.")] = None,
        json_report: Annotated[Path | None, typer.Option("--json", help="Write the evaluation JSON.")] = None,
        junit: Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report.")] = None,
        sarif: Annotated[Path | None, typer.Option("--sarif", help="Write a SARIF 2.1.0 report.")] = None,
        gitlab_report: Annotated[Path | None, typer.Option("--gitlab-report", help="Write a GitLab container "
                                                              "scanning report.")] = None,
        codequality: Annotated[Path | None, typer.Option("--codequality", help="Write a GitLab Code Quality "
                                                            "report.")] = None,
        markdown: Annotated[Path | None, typer.Option("--markdown", help="Write the Markdown summary.")] = None,
        compliance: Annotated[Path | None, typer.Option("--compliance", help="Write the compliance report.")] = None,
        template: Annotated[Path | None, typer.Option("--template", help="A jinja2 template for --markdown.")] = None,
        comment: Annotated[str | None, typer.Option("--comment", help="auto, github, gitlab or off.")] = None,
        fail_on: Annotated[str | None, typer.Option("--fail-on", help="stop, warn or never.")] = None,
        on_error: Annotated[str | None, typer.Option("--on-error", help="fail or pass.")] = None,
        base_image: Annotated[str | None, typer.Option("--base-image", help="The base image (reference or "
                                                          "path).")] = None,
        platform: PlatformOption = None,
        insecure_registry: InsecureOption = None,
        ca_bundle: CaBundleOption = None,
        no_cache: NoCacheOption = False,
        vex: Annotated[list[Path] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX document whose "
                                                       "not_affected/fixed statements suppress matches "
                                                       "(repeatable).")] = None,
        secret_rules: Annotated[Path | None, typer.Option("--secret-rules", help="YAML file that adds, disables "
                                                             "or tunes secret rules.")] = None,
        anchore_url: Annotated[str | None, typer.Option("--anchore-url", help="Anchore API URL (default "
                                                           "$ANCHORE_URL or $ANCHORECTL_URL).")] = None,
        anchore_user: Annotated[str | None, typer.Option("--anchore-user", help="Anchore user, or _api_key "
                                                            "(default $ANCHORE_USER or $ANCHORECTL_USERNAME).")] = None,
        anchore_password: Annotated[str | None, typer.Option("--anchore-password", help="Prefer $ANCHORE_PASS "
                                                                "(or $ANCHORECTL_PASSWORD): a flag shows in process "
                                                                "lists.")] = None,
        anchore_account: Annotated[str | None, typer.Option("--anchore-account", help="Act in this account "
                                                               "(x-anchore-account header).")] = None,
        anchore_policy_id: Annotated[str | None, typer.Option("--anchore-policy-id", help="Server policy to "
                                                                 "evaluate (default: the active one).")] = None,
        timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait for the Anchore "
                                                         "analysis (default 1800).")] = None,
        poll_interval: Annotated[float | None, typer.Option("--poll-interval", help="Longest pause between "
                                                               "analysis status polls (default 5 s).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Make Anchore re-analyse an already analysed "
                                               "image.")] = False,
    ) -> None:
        """Analyse IMAGE, evaluate the policy, write reports; exit 0 pass, 1 STOP, 2 could not decide."""
        flags = {
            "image": image, "policy": policy, "dockerfile": dockerfile, "tag": tag, "backend": backend,
            "vuln-db": vuln_db, "json": json_report, "junit": junit, "sarif": sarif,
            "gitlab-report": gitlab_report, "codequality": codequality, "markdown": markdown,
            "compliance": compliance, "template": template, "comment": comment, "fail-on": fail_on,
            "on-error": on_error, "base-image": base_image, "platform": platform,
            "insecure-registry": insecure_registry, "ca-bundle": ca_bundle, "no-cache": no_cache,
            "vex": vex, "secret-rules": secret_rules, "anchore-url": anchore_url, "anchore-user": anchore_user,
            "anchore-account": anchore_account, "anchore-policy-id": anchore_policy_id, "timeout": timeout,
            "poll-interval": poll_interval, "force": force,
        }
        on_error_value = on_error or os.environ.get("CI_GATE_ON_ERROR") or "fail"
        try:
            settings = resolve(flags, os.environ, load_config_file(Path.cwd()))
            settings["anchore-password"] = anchore_password
            on_error_value = str(settings["on-error"])
            options = build_options(settings)
            result = run_gate(options, progress=sys.stderr.isatty() and not os.environ.get("CI"))
        except CiGateError as error:
            if on_error_value != "pass":
                raise
            typer.echo(f"ci-gate: error: {error}", err=True)
            typer.echo("ci-gate: WARNING: the gate could NOT decide, and --on-error pass lets the build continue "
                       "unchecked", err=True)
            raise typer.Exit(EXIT_PASS) from None
        if _interactive():
            render_rich(result)
        else:
            typer.echo(render_plain(result), nl=False)
        raise typer.Exit(result.exit_code)
