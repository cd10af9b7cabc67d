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
from ci_gate.gate import EXIT_PASS, GateOptions, GateResult, ReportTargets

if TYPE_CHECKING:
    from ci_gate.backends.interface import AnchoreOptions

CONFIG_FILE = ".ci-gate.yaml"

SETTINGS = {
    "image": None, "policy": "builtin:default", "dockerfile": None, "tag": None, "backend": "local",
    "vuln-db": None, "json": None, "junit": None, "sarif": None, "gitlab-report": None, "codequality": None,
    "markdown": None, "compliance": None, "html": None, "template": None, "comment": "off", "fail-on": "stop",
    "on-error": "fail", "base-image": None, "platform": None, "insecure-registry": None, "ca-bundle": None,
    "no-cache": False, "vex": None, "secret-rules": None,
    "anchore-url": None, "anchore-user": None, "anchore-account": None, "anchore-policy-id": None,
    "timeout": None, "poll-interval": None, "force": False, "verbose": False,
    "save-sbom": None, "compare-to": None,
}
"""Every setting the gate reads, by long option name, with its default."""

LIST_SETTINGS = ("insecure-registry", "vex")
"""Settings that may be given several times (comma-separated in a CI_GATE_* variable)."""

CHOICES = {"backend": ("local", "anchore"), "comment": ("auto", "github", "gitlab", "review", "off"),
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
            template=_path(settings["template"]), html=_path(settings.get("html")),
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


def render_plain(result: GateResult, verbose: bool = False, policy: str = "") -> str:
    """Plain lines (CI logs, pipes); see `ci_gate.reports.terminal`."""
    from ci_gate.reports.terminal import render_plain as plain

    return plain(result, verbose=verbose, policy=policy)


def render_rich(result: GateResult, verbose: bool = False, policy: str = "") -> None:
    from ci_gate.reports.terminal import render_rich as rich

    rich(result, verbose=verbose, policy=policy)


def _interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


GATE_HELP = "\n".join((
    "Analyse IMAGE, evaluate the policy, write the reports, and end with the verdict: what must be fixed before "
    "the image can be pushed, and how.",
    "",
    "IMAGE is SCHEME:LOCATION (the schemes syft uses):",
    "  docker-archive:PATH  a `docker save` archive       e.g. docker-archive:app.tar",
    "  oci-archive:PATH     an OCI archive                e.g. oci-archive:app-oci.tar",
    "  oci-dir:PATH         an OCI image layout           e.g. oci-dir:build/oci",
    "  dir:PATH             a root filesystem             e.g. dir:rootfs",
    "  registry:REF         a registry, no daemon needed  e.g. registry:ghcr.io/acme/app:1.4",
    "  docker:REF           the local Docker daemon       e.g. docker:acme/app:1.4",
    "  sbom:PATH            an SBOM (syft/CycloneDX/SPDX) e.g. sbom:app.cdx.json",
    "A bare path is detected; a bare reference tries the Docker daemon, then the registry.",
    "",
    "Example: ci-gate gate oci-dir:build/oci --policy builtin:dod --dockerfile Dockerfile --sarif ci-gate.sarif",
))

IMAGE_HELP = "The image: SCHEME:LOCATION, see above."
"""(Typer with Click 8.2 drops an argument's help; the schemes are in the command's help.)"""

POLICY_PANEL = "Policy"
VULNERABILITY_PANEL = "Vulnerabilities"
REPORT_PANEL = "Reports (each written only when asked for)"
PUBLISH_PANEL = "Publishing and exit code"
SOURCE_PANEL = "Image source"
ANCHORE_PANEL = "Anchore backend (--backend anchore)"


def register(app: typer.Typer) -> None:
    """Add the `gate` command to the root app."""

    def option(*names: str, help: str, panel: str, default: str | None = None) -> Any:
        # The defaults live in SETTINGS (flags, CI_GATE_* and .ci-gate.yaml are layered), so typer sees None;
        # `show_default` prints the real one.
        return typer.Option(*names, help=help, rich_help_panel=panel, show_default=default or False)

    @app.command(help=GATE_HELP, epilog="Exit codes: 0 the image may be pushed (GO or WARN), 1 policy STOP (or WARN "
                 "with --fail-on warn), 2 ci-gate could not decide. Every option can also be set as "
                 "CI_GATE_<OPTION> or in .ci-gate.yaml.")
    def gate(
        image: Annotated[str | None, typer.Argument(help=IMAGE_HELP, show_default=False)] = None,
        policy: Annotated[str | None, option("--policy", help="Policy file (Anchore v2 JSON/YAML) or builtin:NAME "
                                             "(builtin:default, builtin:dod, builtin:cis).", panel=POLICY_PANEL,
                                             default="builtin:default")] = None,
        dockerfile: Annotated[Path | None, option("--dockerfile", help="The Dockerfile the image was built from: "
                                                  "findings point at its lines, and fixes are suggested for them.",
                                                  panel=POLICY_PANEL)] = None,
        tag: Annotated[str | None, option("--tag", help="The tag policy mappings match on.", panel=POLICY_PANEL,
                                          default="the image's own tag")] = None,
        base_image: Annotated[str | None, option("--base-image", help="The base image (reference or path): tells "
                                                 "base-image packages from yours.", panel=POLICY_PANEL)] = None,
        secret_rules: Annotated[Path | None, option("--secret-rules", help="YAML file that adds, disables or tunes "
                                                    "secret rules.", panel=POLICY_PANEL)] = None,
        vuln_db: Annotated[Path | None, option("--vuln-db", help="The offline vulnerability store (ci-gate db "
                                               "import / db update make it).", panel=VULNERABILITY_PANEL,
                                               default="~/.local/share/ci-gate/vulns.sqlite")] = None,
        vex: Annotated[list[Path] | None, option("--vex", help="OpenVEX or CycloneDX VEX document whose "
                                                 "not_affected/fixed statements suppress matches (repeatable).",
                                                 panel=VULNERABILITY_PANEL)] = None,
        json_report: Annotated[Path | None, option("--json", help="The evaluation JSON (Anchore v2 shaped).",
                                                   panel=REPORT_PANEL)] = None,
        junit: Annotated[Path | None, option("--junit", help="JUnit XML (GitLab, Jenkins test tabs).",
                                             panel=REPORT_PANEL)] = None,
        sarif: Annotated[Path | None, option("--sarif", help="SARIF 2.1.0 (GitHub code scanning).",
                                             panel=REPORT_PANEL)] = None,
        gitlab_report: Annotated[Path | None, option("--gitlab-report", help="GitLab container scanning report.",
                                                     panel=REPORT_PANEL)] = None,
        codequality: Annotated[Path | None, option("--codequality", help="GitLab Code Quality report.",
                                                   panel=REPORT_PANEL)] = None,
        markdown: Annotated[Path | None, option("--markdown", help="The Markdown comment, with fixes.",
                                                panel=REPORT_PANEL)] = None,
        compliance: Annotated[Path | None, option("--compliance", help="The compliance report (DISA / CIS item, "
                                                  "status, evidence, fix).", panel=REPORT_PANEL)] = None,
        html: Annotated[Path | None, option("--html", help="One self-contained HTML page: verdict, fixes, "
                                            "vulnerabilities, compliance, layers.", panel=REPORT_PANEL)] = None,
        template: Annotated[Path | None, option("--template", help="A jinja2 template that replaces the Markdown "
                                                "comment's.", panel=REPORT_PANEL)] = None,
        comment: Annotated[str | None, option("--comment", help="Post one comment per image on the pull/merge "
                                              "request: auto, github, gitlab, review (GitHub, plus review "
                                              "comments with suggested Dockerfile fixes) or off.",
                                              panel=PUBLISH_PANEL, default="off")] = None,
        fail_on: Annotated[str | None, option("--fail-on", help="Which verdict fails the build: stop, warn or "
                                              "never.", panel=PUBLISH_PANEL, default="stop")] = None,
        on_error: Annotated[str | None, option("--on-error", help="When ci-gate cannot decide: fail (exit 2) or "
                                               "pass (exit 0, loudly).", panel=PUBLISH_PANEL,
                                               default="fail")] = None,
        verbose: Annotated[bool, option("--verbose", help="Show every finding on its own row, trigger ids and "
                                        "allowlisted findings.", panel=PUBLISH_PANEL)] = False,
        platform: Annotated[str | None, option("--platform", help="os/arch or os/arch/variant to pick from a "
                                               "multi-platform image.", panel=SOURCE_PANEL,
                                               default="this machine's")] = None,
        insecure_registry: Annotated[list[str] | None, option("--insecure-registry", help="HOST[:PORT] that may be "
                                                              "reached over plain HTTP (repeatable).",
                                                              panel=SOURCE_PANEL)] = None,
        ca_bundle: Annotated[Path | None, option("--ca-bundle", help="CA bundle for registry TLS.",
                                                 panel=SOURCE_PANEL, default="the system's")] = None,
        no_cache: Annotated[bool, option("--no-cache", help="Do not read or write the analysis cache.",
                                         panel=SOURCE_PANEL)] = False,
        backend: Annotated[str | None, option("--backend", help="local (analyse and evaluate here) or anchore "
                                              "(an Anchore Enterprise server).", panel=ANCHORE_PANEL,
                                              default="local")] = None,
        anchore_url: Annotated[str | None, option("--anchore-url", help="Anchore API URL.", panel=ANCHORE_PANEL,
                                                  default="$ANCHORE_URL or $ANCHORECTL_URL")] = None,
        anchore_user: Annotated[str | None, option("--anchore-user", help="Anchore user, or _api_key.",
                                                   panel=ANCHORE_PANEL,
                                                   default="$ANCHORE_USER or $ANCHORECTL_USERNAME")] = None,
        anchore_password: Annotated[str | None, option("--anchore-password", help="Prefer $ANCHORE_PASS (or "
                                                       "$ANCHORECTL_PASSWORD): a flag shows in process lists.",
                                                       panel=ANCHORE_PANEL)] = None,
        anchore_account: Annotated[str | None, option("--anchore-account", help="Act in this account "
                                                      "(x-anchore-account header).", panel=ANCHORE_PANEL)] = None,
        anchore_policy_id: Annotated[str | None, option("--anchore-policy-id", help="Server policy to evaluate.",
                                                        panel=ANCHORE_PANEL, default="the active one")] = None,
        timeout: Annotated[float | None, option("--timeout", help="Seconds to wait for the Anchore analysis.",
                                                panel=ANCHORE_PANEL, default="1800")] = None,
        poll_interval: Annotated[float | None, option("--poll-interval", help="Longest pause between analysis "
                                                      "status polls, in seconds.", panel=ANCHORE_PANEL,
                                                      default="5")] = None,
        force: Annotated[bool, option("--force", help="Make Anchore re-analyse an already analysed image.",
                                      panel=ANCHORE_PANEL)] = False,
        save_sbom: Annotated[str | None, option("--save-sbom", help="Save the analysis in this folder by digest, "
                                                "for `ci-gate watch`.", panel=VULNERABILITY_PANEL)] = None,
        compare_to: Annotated[str | None, option("--compare-to", help="The tag's previous image (IMAGE or "
                                                 "sbom:FILE) for the tag_drift gate.", panel=POLICY_PANEL)] = None,
    ) -> None:
        flags = {
            "image": image, "policy": policy, "dockerfile": dockerfile, "tag": tag, "backend": backend,
            "vuln-db": vuln_db, "json": json_report, "junit": junit, "sarif": sarif,
            "gitlab-report": gitlab_report, "codequality": codequality, "markdown": markdown,
            "compliance": compliance, "html": html, "template": template, "comment": comment, "fail-on": fail_on,
            "on-error": on_error, "base-image": base_image, "platform": platform,
            "insecure-registry": insecure_registry, "ca-bundle": ca_bundle, "no-cache": no_cache,
            "vex": vex, "secret-rules": secret_rules, "anchore-url": anchore_url, "anchore-user": anchore_user,
            "anchore-account": anchore_account, "anchore-policy-id": anchore_policy_id, "timeout": timeout,
            "poll-interval": poll_interval, "force": force, "verbose": verbose,
            "save-sbom": save_sbom, "compare-to": compare_to,
        }
        on_error_value = on_error or os.environ.get("CI_GATE_ON_ERROR") or "fail"
        try:
            settings = resolve(flags, os.environ, load_config_file(Path.cwd()))
            settings["anchore-password"] = anchore_password
            on_error_value = str(settings["on-error"])
            options = build_options(settings)
            from ci_gate.cli_watch import gate_with_history

            result = gate_with_history(options, settings["compare-to"], settings["save-sbom"],
                                       progress=sys.stderr.isatty() and not os.environ.get("CI"))
        except CiGateError as error:
            if on_error_value != "pass":
                raise
            typer.echo(f"ci-gate: error: {error}", err=True)
            typer.echo("ci-gate: WARNING: the gate could NOT decide, and --on-error pass lets the build continue "
                       "unchecked", err=True)
            raise typer.Exit(EXIT_PASS) from None
        show_all = bool(settings.get("verbose"))
        if _interactive():
            render_rich(result, verbose=show_all, policy=options.policy)
        else:
            typer.echo(render_plain(result, verbose=show_all, policy=options.policy), nl=False)
        raise typer.Exit(result.exit_code)
