"""The `gate` command's settings, declared once: each `Setting` is a flag, a `CI_GATE_*` variable and
a `.ci-gate.yaml` key at the same time.

Precedence: a command-line flag, then the `CI_GATE_<OPTION>` environment variable (e.g.
`CI_GATE_FAIL_ON=warn`), then `.ci-gate.yaml` in the working directory (keys are the long option
names, with `-` or `_`), then the default. Closed choices are `Choice` enums, validated once, in
`resolve`, whichever of the three sources gave the value.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from ci_gate.backends.registry import BACKENDS
from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.choices import Choice
from ci_gate.cli.options import CA_BUNDLE_HELP, INSECURE_REGISTRY_HELP, NO_CACHE_HELP, PLATFORM_HELP
from ci_gate.errors import UsageError, quoted
from ci_gate.gate import FailOn, OnError
from ci_gate.publish import CommentMode
from ci_gate.reports.formats import FORMATS

CONFIG_FILE = ".ci-gate.yaml"

MAX_CONFIG_CHARS = 1024 * 1024
"""`.ci-gate.yaml` is a few lines of settings; a megabyte is not a settings file."""

POLICY_PANEL = "Policy"
VULNERABILITY_PANEL = "Vulnerabilities"
REPORT_PANEL = "Reports (each written only when asked for)"
PUBLISH_PANEL = "Publishing and exit code"
SOURCE_PANEL = "Image source"
ANCHORE_PANEL = "Anchore backend (--backend anchore)"

IMAGE_HELP = "The image: SCHEME:LOCATION, see above."
"""(Typer with Click 8.2 drops an argument's help; the schemes are in the command's help.)"""


@dataclass(frozen=True)
class Setting:
    """One gate setting: the flag `--NAME`, the variable `CI_GATE_NAME` and the `.ci-gate.yaml` key `NAME`."""

    name: str
    help: str
    panel: str
    kind: type = str
    """str, Path, float, bool, or a `Choice` enum (given as text, checked by `resolve`)."""
    default: Any = None
    shown_default: str | None = None
    """What --help shows as the default when it is not `default` (e.g. "the image's own tag")."""
    choices: tuple[str, ...] = ()
    """The allowed values, for a closed set that is a registry rather than an enum (--backend)."""
    repeatable: bool = False
    """Given several times on the command line, comma-separated in a variable, a list in the file."""
    in_config: bool = True
    """False for a secret: never read from `.ci-gate.yaml`, which is committed."""
    argument: bool = False
    """The positional IMAGE rather than a --flag."""

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def variable(self) -> str:
        return "CI_GATE_" + self.name.upper().replace("-", "_")

    @property
    def parameter(self) -> str:
        return self.name.replace("-", "_")

    @property
    def allowed(self) -> tuple[str, ...]:
        if isinstance(self.kind, type) and issubclass(self.kind, Choice):
            return self.kind.values()
        return self.choices


GATE_SETTINGS: tuple[Setting, ...] = (
    Setting("image", IMAGE_HELP, "", argument=True),
    Setting("policy", "Policy file (Anchore v2 JSON/YAML) or builtin:NAME (builtin:default, builtin:dod, "
            "builtin:cis).", POLICY_PANEL, default="builtin:default", shown_default="builtin:default"),
    Setting("dockerfile", "The Dockerfile the image was built from: findings point at its lines, and fixes are "
            "suggested for them.", POLICY_PANEL, kind=Path),
    Setting("tag", "The tag policy mappings match on.", POLICY_PANEL, shown_default="the image's own tag"),
    Setting("base-image", "The base image (reference or path): tells base-image packages from yours.",
            POLICY_PANEL),
    Setting("secret-rules", "YAML file that adds, disables or tunes secret rules.", POLICY_PANEL, kind=Path),
    Setting("vuln-db", "The offline vulnerability store (ci-gate db import / db update make it).",
            VULNERABILITY_PANEL, kind=Path, shown_default="~/.local/share/ci-gate/vulns.sqlite"),
    Setting("vex", "OpenVEX or CycloneDX VEX document whose not_affected/fixed statements suppress matches "
            "(repeatable).", VULNERABILITY_PANEL, kind=Path, repeatable=True),
    Setting("compare-to", "The tag's previous image (IMAGE or sbom:FILE) for the tag_drift gate.", POLICY_PANEL),
    Setting("save-sbom", "Save the analysis in this folder by digest, for `ci-gate watch`.", VULNERABILITY_PANEL),
    *(Setting(spec.id, spec.help, REPORT_PANEL, kind=Path) for spec in FORMATS),
    Setting("template", "A jinja2 template that replaces the Markdown comment's.", REPORT_PANEL, kind=Path),
    Setting("comment", "Post one comment per image on the pull/merge request: auto, github, gitlab, review "
            "(GitHub, plus review comments with suggested Dockerfile fixes) or off.", PUBLISH_PANEL,
            kind=CommentMode, default=CommentMode.OFF, shown_default="off"),
    Setting("fail-on", "Which verdict fails the build: stop, warn or never.", PUBLISH_PANEL, kind=FailOn,
            default=FailOn.STOP, shown_default="stop"),
    Setting("on-error", "When ci-gate cannot decide: fail (exit 2) or pass (exit 0, loudly).", PUBLISH_PANEL,
            kind=OnError, default=OnError.FAIL, shown_default="fail"),
    Setting("verbose", "Show every finding on its own row, trigger ids and allowlisted findings.", PUBLISH_PANEL,
            kind=bool, default=False),
    Setting("platform", PLATFORM_HELP, SOURCE_PANEL, shown_default="this machine's"),
    Setting("insecure-registry", INSECURE_REGISTRY_HELP, SOURCE_PANEL, repeatable=True),
    Setting("ca-bundle", CA_BUNDLE_HELP, SOURCE_PANEL, kind=Path, shown_default="the system's"),
    Setting("no-cache", NO_CACHE_HELP, SOURCE_PANEL, kind=bool, default=False),
    Setting("backend", "local (analyse and evaluate here) or anchore (an Anchore Enterprise server).",
            ANCHORE_PANEL, default="local", shown_default="local", choices=tuple(BACKENDS)),
    Setting("anchore-url", "Anchore API URL.", ANCHORE_PANEL, shown_default="$ANCHORE_URL or $ANCHORECTL_URL"),
    Setting("anchore-user", "Anchore user, or _api_key.", ANCHORE_PANEL,
            shown_default="$ANCHORE_USER or $ANCHORECTL_USERNAME"),
    Setting("anchore-password", "Prefer $ANCHORE_PASS (or $ANCHORECTL_PASSWORD): a flag shows in process lists.",
            ANCHORE_PANEL, in_config=False),
    Setting("anchore-account", "Act in this account (x-anchore-account header).", ANCHORE_PANEL),
    Setting("anchore-policy-id", "Server policy to evaluate.", ANCHORE_PANEL, shown_default="the active one"),
    Setting("timeout", "Seconds to wait for the Anchore analysis.", ANCHORE_PANEL, kind=float, shown_default="1800"),
    Setting("poll-interval", "Longest pause between analysis status polls, in seconds.", ANCHORE_PANEL, kind=float,
            shown_default="5"),
    Setting("force", "Make Anchore re-analyse an already analysed image.", ANCHORE_PANEL, kind=bool, default=False),
)
"""Every setting the gate reads, in --help order."""

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in GATE_SETTINGS}
CONFIG_SETTINGS: tuple[str, ...] = tuple(setting.name for setting in GATE_SETTINGS if setting.in_config)


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
        if name not in CONFIG_SETTINGS:
            close = difflib.get_close_matches(name, list(CONFIG_SETTINGS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"{path}: unknown setting {quoted(str(key))}{hint}; "
                             f"settings: {', '.join(CONFIG_SETTINGS)}")
        settings[name] = value
    return settings


def _given(setting: Setting, flag: Any) -> bool:
    return flag is not None and flag != [] and not (setting.kind is bool and flag is False)


def _choice(setting: Setting, value: Any) -> Any:
    """The one place a closed choice is checked, whichever source gave it."""
    allowed = setting.allowed
    if not allowed or value is None:
        return value
    if str(value) not in allowed:
        raise UsageError(f"{setting.name} {value!r} is not valid; use one of {', '.join(allowed)}")
    kind = setting.kind
    return kind(str(value)) if isinstance(kind, type) and issubclass(kind, Enum) else str(value)


def resolve(flags: Mapping[str, Any], environment: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """Flags win over CI_GATE_* variables, which win over .ci-gate.yaml, which wins over defaults."""
    resolved: dict[str, Any] = {}
    for setting in GATE_SETTINGS:
        name = setting.name
        flag = flags.get(name)
        if _given(setting, flag):
            value: Any = flag
        elif environment.get(setting.variable, "") != "":
            value = environment[setting.variable]
            if setting.kind is bool:
                value = value.strip().lower() in ("1", "true", "yes", "on")
            elif setting.repeatable:
                value = [item.strip() for item in value.split(",") if item.strip()]
        elif setting.in_config and config.get(name) is not None:
            value = config[name]
            if setting.repeatable and isinstance(value, str):
                value = [value]
        else:
            value = setting.default
        resolved[name] = _choice(setting, value)
    return resolved


def command_signature(settings: tuple[Setting, ...] = GATE_SETTINGS) -> inspect.Signature:
    """The typer parameters of a command that takes `settings`: typer reads this signature like a
    hand-written one. Every default is None (False for a switch): the real defaults are layered by
    `resolve`, and `shown_default` is what --help prints."""
    parameters = []
    for setting in settings:
        base: Any = Path if setting.kind is Path else float if setting.kind is float else str
        if setting.kind is bool:
            annotation: Any = bool
        elif setting.repeatable:
            annotation = list[base] | None
        else:
            annotation = base | None
        info: Any = (typer.Argument(help=setting.help, show_default=False) if setting.argument else
                     typer.Option(setting.flag, help=setting.help, rich_help_panel=setting.panel,
                                  show_default=setting.shown_default or False))
        default = False if setting.kind is bool else None
        parameters.append(inspect.Parameter(setting.parameter, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=default, annotation=Annotated[annotation, info]))
    return inspect.Signature(parameters, return_annotation=None)


def flags_from(parameters: Mapping[str, Any], settings: tuple[Setting, ...] = GATE_SETTINGS) -> dict[str, Any]:
    """The command's keyword arguments, by setting name."""
    return {setting.name: parameters.get(setting.parameter) for setting in settings}


def with_settings(function: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    """A command function whose parameters are `GATE_SETTINGS`; `function` receives them by setting name."""

    def command(**parameters: Any) -> None:
        function(flags_from(parameters))

    command.__signature__ = command_signature()  # type: ignore[attr-defined]
    command.__doc__ = function.__doc__
    command.__name__ = function.__name__
    return command
