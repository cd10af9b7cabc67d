"""The shared data model: what an image holds (`Analysis`) and what a policy said of it (`Evaluation`).

Every stage after `sources` speaks these frozen dataclasses. They know no output format: the JSON
codec (`ci_gate.codec`: `to_dict`, `from_dict`, `write_json`, re-exported here) gives plain JSON-ready
structures (used by the analysis cache and `analyze -o json`), and each report format in
`ci_gate.reports` is a pure function of these objects.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_gate.codec import from_dict as from_dict
from ci_gate.codec import to_dict as to_dict
from ci_gate.codec import write_json as write_json

ANALYSIS_SCHEMA_VERSION = "1"


# --- the image -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layer:
    """One filesystem layer of the image, bottom (index 0) to top."""

    index: int
    """Position in the image, 0 = the bottom layer."""
    digest: str
    """Digest of the blob as stored (compressed) — the manifest's layer digest."""
    diff_id: str
    """Digest of the uncompressed tar — the config's rootfs.diff_ids entry; what syft calls layerID."""
    media_type: str
    size: int
    """Size in bytes of the blob as stored."""
    created_by: str = ""
    """The history entry (`created_by`) that made this layer, when the config records it."""
    base: bool | None = None
    """True when the layer belongs to the base image, False for the application's layers, None unknown."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One entry of the config's history, including the ones that made no layer."""

    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False
    layer_index: int | None = None
    """The layer this entry made, or None for metadata-only steps (ENV, USER, ...)."""


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    """Which image this is and where it came from."""

    reference: str
    """What the user asked for, e.g. `registry:127.0.0.1:5000/app:1` or `oci-dir:build/oci`."""
    scheme: str
    """The source scheme that opened it: docker-archive, oci-archive, oci-dir, dir, registry, docker, sbom."""
    manifest_digest: str | None
    config_digest: str | None
    """The image id (digest of the config blob)."""
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    platform: str = ""
    """os/architecture[/variant], e.g. linux/amd64."""
    created: str = ""
    layers: tuple[Layer, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    total_size: int = 0
    """Sum of the stored sizes of the layers."""


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    value: str
    """The value, or a redaction marker when the name or value looks like a secret."""
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The runtime configuration of the image (the config blob's `config` object)."""

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    """As in the config, e.g. `8080/tcp`."""
    env: tuple[EnvVar, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    healthcheck: Mapping[str, Any] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None


class Label(str, enum.Enum):
    """An enum whose members are their strings (`Action.STOP == "STOP"`, `str(Action.STOP) == "STOP"`), so the
    JSON, the policy documents and the reports keep the plain strings Anchore uses."""

    def __str__(self) -> str:
        return str(self.value)


class Origin(Label):
    """Which part of the image a layer (and what it installed) belongs to."""

    BASE = "base"
    """A layer of the base image."""
    APP = "app"
    """A layer the application's build added."""


ORIGINS: tuple[str, ...] = tuple(origin.value for origin in Origin)


def origin_for(base: bool | None) -> str | None:
    """The one spelling of an origin: `base`, `app`, or None when base membership is unknown."""
    if base is None:
        return None
    return Origin.BASE.value if base else Origin.APP.value


def layer_origin(layers: typing.Sequence[Layer], layer_index: int | None) -> str | None:
    """The origin of the layer at `layer_index`; None for no layer, an index out of range, an unknown base."""
    if layer_index is None or not 0 <= layer_index < len(layers):
        return None
    return origin_for(layers[layer_index].base)


@dataclass(frozen=True, slots=True)
class Distro:
    """The Linux distribution, from /etc/os-release or a classic fallback."""

    id: str
    version_id: str = ""
    name: str = ""
    pretty_name: str = ""
    version_codename: str = ""
    id_like: tuple[str, ...] = ()
    source_path: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    """Where evidence for something was found inside the image."""

    path: str
    layer_index: int | None = None
    layer_diff_id: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package; the names follow syft so the two can be compared package by package."""

    name: str
    version: str
    type: str
    """syft's package type: deb, apk, rpm, python, npm, java-archive, go-module, gem, php-composer, dotnet,
    rust-crate."""
    purl: str = ""
    licenses: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    found_by: str = ""
    """The cataloger that found it."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Ecosystem details: source package and version, architecture, epoch, release, origin, ..."""
    origin: str | None = None
    """`base` or `app`: whether the layer that introduced the package belongs to the base image."""


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int | None
    gid: int | None
    gecos: str = ""
    home: str = ""
    shell: str = ""
    password: str = ""
    """The second field as written (`x`, `*`, `!`, empty, or a hash); a hash is never kept, only `<hash>`."""
    line: str = ""
    """The whole line, as Anchore's `blacklist_full_entry` compares it (a password hash replaced by `<hash>`)."""


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int | None
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One entry of the squashed filesystem."""

    path: str
    kind: str
    """file, dir, symlink, hardlink, char, block, fifo."""
    mode: int
    """Permission bits including setuid/setgid/sticky (no file-type bits)."""
    size: int = 0
    uid: int = 0
    gid: int = 0
    link_target: str = ""
    layer_index: int = 0
    """The layer that last wrote this path."""


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """A secret-looking match. The secret itself is never kept: only a short redacted preview."""

    rule: str
    """The rule name, e.g. AWS_ACCESS_KEY or PRIV_KEY (Anchore's names for Anchore's defaults)."""
    where: str
    """file, env, history, label."""
    path: str
    """File path, or `ENV:NAME`, `history[N]`, `label:KEY`."""
    line: int | None = None
    layer_index: int | None = None
    preview: str = ""
    """A short redacted excerpt, e.g. `aws_secret_access_key = ****` (no character of the secret)."""
    deleted: bool = False
    """True when the file is not in the final filesystem (deleted by a later layer) but still shipped."""
    regex: str = ""
    """The `NAME=REGEX` text as Anchore reports it (its trigger messages carry it)."""


@dataclass(frozen=True, slots=True)
class DockerfileInstruction:
    instruction: str
    """Upper-case keyword, e.g. RUN."""
    value: str
    """Everything after the keyword, continuations joined, as Anchore's dockerfile gate sees it."""
    line: int
    """1-based line of the keyword in the Dockerfile (or the history index when guessed)."""
    end_line: int = 0
    stage: int = 0
    expanded: str = ""
    """The value with ARG/ENV variables substituted as the builder does (FROM, USER, EXPOSE, WORKDIR,
    ENV, LABEL, STOPSIGNAL, VOLUME), else the value itself; empty when not computed (use `value`)."""


@dataclass(frozen=True, slots=True)
class Dockerfile:
    mode: str
    """actual (the user gave it), guessed (rebuilt from history), or unknown."""
    path: str = ""
    instructions: tuple[DockerfileInstruction, ...] = ()
    """The final stage's instructions: the stage that is the image."""
    stage_count: int = 1
    base_image: str = ""
    """The FROM of the final stage, with ARGs substituted."""


@dataclass(frozen=True, slots=True)
class ContentMatch:
    """A `files/content_regex_match` hit from the configured content searches."""

    name: str
    path: str
    line: int | None = None
    layer_index: int | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything ci-gate found inside one image."""

    identity: ImageIdentity
    config: ImageConfig = field(default_factory=ImageConfig)
    distro: Distro | None = None
    packages: tuple[Package, ...] = ()
    users: tuple[UserEntry, ...] = ()
    groups: tuple[GroupEntry, ...] = ()
    files: tuple[FileRecord, ...] = ()
    secrets: tuple[SecretFinding, ...] = ()
    content_matches: tuple[ContentMatch, ...] = ()
    retrieved_files: Mapping[str, str] = field(default_factory=dict)
    """Small files kept for the `retrieved_files` gate (path → text), /etc/passwd by default."""
    dockerfile: Dockerfile = field(default_factory=lambda: Dockerfile(mode="unknown"))
    file_count: int = 0
    warnings: tuple[str, ...] = ()
    """Things the analysis noticed and worked around (hostile entries, unreadable databases)."""
    schema_version: str = ANALYSIS_SCHEMA_VERSION
    tool_version: str = ""

    @property
    def setuid_files(self) -> tuple[FileRecord, ...]:
        return tuple(f for f in self.files if f.kind in ("file", "hardlink") and f.mode & 0o6000)

    @property
    def world_writable_files(self) -> tuple[FileRecord, ...]:
        """World-writable entries, excluding symlinks and sticky directories (like /tmp)."""
        return tuple(
            f
            for f in self.files
            if f.kind != "symlink" and f.mode & 0o002 and not (f.kind == "dir" and f.mode & 0o1000)
        )


# --- the evaluation ------------------------------------------------------------------------------

class Action(Label):
    """A policy action, mildest first (Anchore's names). Members equal their strings."""

    GO = "GO"
    WARN = "WARN"
    STOP = "STOP"


ACTIONS: tuple[str, ...] = tuple(action.value for action in Action)
"""Policy actions, mildest first."""


class Severity(Label):
    """A vulnerability severity, mildest first (Anchore's ladder). Members equal their strings."""

    UNKNOWN = "unknown"
    NEGLIGIBLE = "negligible"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITIES: tuple[str, ...] = tuple(severity.value for severity in Severity)
"""Anchore's severity ladder, mildest first (index order is how the gate compares severities)."""
SEVERITY_ORDER: tuple[str, ...] = tuple(reversed(SEVERITIES))
"""Vulnerability severities, worst first."""


def worst_action(actions: typing.Iterable[str]) -> str:
    """The most severe of the given actions; GO when there are none."""
    worst = "GO"
    for action in actions:
        if ACTIONS.index(action.upper()) > ACTIONS.index(worst):
            worst = action.upper()
    return worst


@dataclass(frozen=True, slots=True)
class AllowlistMatch:
    allowlist_id: str
    allowlist_name: str = ""
    item_id: str = ""
    reason: str = ""
    approved_by: str = ""
    expires_on: str = ""


@dataclass(frozen=True, slots=True)
class VulnerabilityDetail:
    """What a vulnerability finding adds to a finding."""

    id: str
    severity: str = "unknown"
    cvss_score: float | None = None
    fixed_versions: tuple[str, ...] = ()
    package_name: str = ""
    package_version: str = ""
    package_type: str = ""
    package_path: str = ""
    url: str = ""
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One fired trigger, as Anchore reports it, plus where in the image and Dockerfile it points."""

    gate: str
    trigger: str
    trigger_id: str
    action: str
    """The rule's action: STOP, WARN or GO (before allowlisting)."""
    message: str
    rule_id: str = ""
    policy_id: str = ""
    rule_set_id: str = ""
    controls: tuple[str, ...] = ()
    allowlisted: AllowlistMatch | None = None
    path: str = ""
    layer_index: int | None = None
    origin: str | None = None
    """base or app, where the finding is tied to a layer."""
    dockerfile_line: int | None = None
    vulnerability: VulnerabilityDetail | None = None
    recommendation: str = ""
    """The rule's own `recommendation` (Anchore v2 rules may carry one); empty when the rule has none, and
    the reports then give the built-in advice for the gate and trigger (`ci_gate.reports.advice`)."""

    @property
    def effective_action(self) -> str:
        return "GO" if self.allowlisted else self.action


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One policy rule that was evaluated, whether or not it fired (reports list what was checked)."""

    rule_id: str
    gate: str
    trigger: str
    action: str
    policy_id: str = ""
    rule_set_id: str = ""
    controls: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    fired: int = 0
    description: str = ""
    recommendation: str = ""
    """The rule's own `recommendation`, empty when it has none."""


@dataclass(frozen=True, slots=True)
class ExpiredException:
    """An allowlist item that no longer applies because its `expires_on` has passed."""

    allowlist_id: str
    item_id: str
    gate: str
    trigger_id: str
    expires_on: str
    reason: str = ""
    approved_by: str = ""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The policy decision for one image, the same whichever backend produced it."""

    image_digest: str
    tag: str
    policy_id: str
    policy_name: str
    final_action: str
    """GO, WARN or STOP after allowlists and allowed/denied images."""
    final_action_reason: str
    """policy_evaluation, denylisted or allowlisted (Anchore's v1 names: blacklisted, whitelisted)."""
    findings: tuple[Finding, ...] = ()
    rules: tuple[RuleOutcome, ...] = ()
    matched_mapping: str | None = None
    expired_exceptions: tuple[ExpiredException, ...] = ()
    warnings: tuple[str, ...] = ()
    evaluated_at: str = ""
    backend: str = "local"
    policy_action: str = ""
    """The policy's decision before allowlisted/denylisted images (Anchore's details.policy_action)."""
    matched_image_rule: str | None = None
    """The allowlisted_images/denylisted_images rule (name or id) that decided, when one did."""
