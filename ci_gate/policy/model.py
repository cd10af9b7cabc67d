"""The policy model: what a loaded Anchore policy is (rule sets, rules, allowlists, mappings),
and what is wrong with a document (`Problem`, `PolicyValidationError`).

The field names follow Anchore Enterprise's v2 policy schema (docs/policy.md); `controls`,
`reason` and `approved_by` are ci-gate extensions a document may leave out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ci_gate.errors import PolicyError

ARTIFACT_TYPES = ("image", "sbom", "source")
"""A rule set's `artifact_type`: Enterprise v2 `image` and `source`, v6 `sbom`."""
SBOM_GATES = ("vulnerabilities", "packages", "licenses", "always")
"""Gates an SBOM carries the evidence for (Enterprise 6 applies vulnerabilities and always to SBOMs)."""
POLICY_KEYS = (
    "id",
    "name",
    "version",
    "description",
    "rule_sets",
    "allowlists",
    "mappings",
    "allowlisted_images",
    "denylisted_images",
    "source_mappings",
    "sbom_mappings",
    "last_updated",
    "comment",
)
"""The top-level fields of a v2 policy (docs/policy.md lists the same 13)."""
# The fields each object of a v2 policy may carry; `comment` is accepted on every one (policy.fields.keys).
RULE_SET_KEYS = ("id", "name", "version", "description", "rules", "artifact_type", "last_updated", "comment")
RULE_KEYS = ("id", "gate", "trigger", "action", "params", "description", "recommendation", "controls")
PARAMETER_KEYS = ("name", "value")
ALLOWLIST_KEYS = ("id", "name", "version", "description", "items", "last_updated", "comment")
ALLOWLIST_ITEM_KEYS = ("id", "gate", "trigger_id", "expires_on", "description", "reason", "approved_by")
MAPPING_KEYS = ("id", "name", "registry", "repository", "image", "rule_set_ids", "allowlist_ids", "description")
SELECTION_KEYS = ("id", "name", "registry", "repository", "image", "description")
"""The fields of an image selection rule (allowlisted_images, denylisted_images)."""
IMAGE_REF_KEYS = ("type", "value")
MAX_MESSAGE_CHARS = 1000
"""A problem message may quote the document (an unknown gate name, a bad value): never a flood."""


@dataclass(frozen=True)
class ImageRef:
    type: str
    """tag, digest or id."""
    value: str


@dataclass(frozen=True)
class Rule:
    id: str
    gate: str
    """Lower-case gate name as written."""
    trigger: str
    """Lower-case trigger name as written (the trigger id hashes this spelling)."""
    action: str
    """GO, WARN or STOP."""
    params: tuple[tuple[str, str], ...] = ()
    """(canonical parameter name, raw string value)."""
    description: str = ""
    recommendation: str = ""
    controls: tuple[str, ...] = ()
    """ci-gate extension: the requirements this rule evidences, e.g. `NIST AC-6(10)`."""
    line: int = 0
    """Line of the rule in its document (0 unknown), for messages."""


@dataclass(frozen=True)
class Versioned:
    """What a policy, its rule sets and its allowlists share: an id, a name and a schema version."""

    id: str
    name: str
    version: str
    """`2` (or `v2`) in a v2 document, `1_0` in an anchore-engine bundle."""


@dataclass(frozen=True)
class RuleSet(Versioned):
    rules: tuple[Rule, ...]
    description: str = ""
    artifact_type: str = "image"
    """What the rule set evaluates: image (images), sbom (SBOMs, through sbom_mappings) or source."""


@dataclass(frozen=True)
class AllowlistItem:
    id: str
    gate: str
    trigger_id: str
    expires_on: datetime | None = None
    expires_on_text: str = ""
    description: str = ""
    reason: str = ""
    """ci-gate extension: why the exception exists."""
    approved_by: str = ""
    """ci-gate extension: who accepted the risk."""


@dataclass(frozen=True)
class Allowlist(Versioned):
    items: tuple[AllowlistItem, ...]
    description: str = ""


@dataclass(frozen=True)
class ImageSelectionRule:
    """Which images a rule applies to: registry, repository and image (tag, digest or id) patterns."""

    id: str
    name: str
    registry: str
    repository: str
    image: ImageRef


@dataclass(frozen=True)
class MappingRule(ImageSelectionRule):
    """An image selection that names the rule sets and allowlists evaluated for the images it selects."""

    rule_set_ids: tuple[str, ...] = ()
    allowlist_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy(Versioned):
    rule_sets: tuple[RuleSet, ...]
    mappings: tuple[MappingRule, ...]
    allowlists: tuple[Allowlist, ...] = ()
    allowlisted_images: tuple[ImageSelectionRule, ...] = ()
    denylisted_images: tuple[ImageSelectionRule, ...] = ()
    description: str = ""
    sbom_mappings: tuple[MappingRule, ...] = ()
    """Which sbom rule sets and allowlists apply to an SBOM; registry/repository/image default to `*`."""
    source: str = ""
    """Where it was loaded from: a path or builtin:NAME."""
    original_format: str = "v2"
    """v2, or v1 for a converted anchore-engine bundle."""
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The v2 document as loaded (v1 bundles converted), for reports that embed the policy."""
    warnings: tuple[str, ...] = ()
    """Problems that do not stop evaluation (EOL gates skipped, rules that can never fire)."""

    def rule_set(self, rule_set_id: str) -> RuleSet | None:
        return next((r for r in self.rule_sets if r.id == rule_set_id), None)

    def allowlist(self, allowlist_id: str) -> Allowlist | None:
        return next((a for a in self.allowlists if a.id == allowlist_id), None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy document."""

    message: str
    line: int = 0
    column: int = 0
    severity: str = "error"
    """error (the document is invalid) or warning."""

    def render(self, source: str) -> str:
        where = source
        if self.line:
            where += f":{self.line}:{self.column}"
        # A message may quote the document (an unknown gate name, a bad value): never a flood.
        message = self.message if len(self.message) <= MAX_MESSAGE_CHARS else self.message[:MAX_MESSAGE_CHARS] + "…"
        return f"{where}: {self.severity}: {message}"


class PolicyValidationError(PolicyError):
    """A policy document is invalid; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0].render(source) if errors else source
        more = f" (and {len(errors) - 1} more; run `ci-gate policy validate {source}`)" if len(errors) > 1 else ""
        super().__init__(first + more)


# --- reading text with positions -------------------------------------------------------------------
