"""Policy documents: Anchore Enterprise v2 policies and legacy v1 bundles, JSON or YAML.

`load_policy` reads a file or `builtin:NAME`, converts a v1 bundle to the v2 shape, and checks
everything a policy author can get wrong against the gate declarations: unknown gate, trigger or
parameter names (with the nearest valid one), parameter types and enum values, required fields,
duplicate ids, mappings naming missing rule sets or allowlists, bad dates. Every problem carries
the file, line and column of the offending node.

Extensions (optional, so a document stays valid for Anchore): `controls` on a rule, `reason`
and `approved_by` on an allowlist item.

What anchore-engine accepts is accepted here too: `comment` on any object; unknown fields (a
warning: at the top level of any document, anywhere in a v1 bundle, whose schema allows them);
allowlist items sharing an id (all of them apply; the first that matches is reported, as in the
engine); a regular expression that does not compile (a warning: the document loads and that rule
reports an error finding when it is evaluated). Rule sets carry their `artifact_type` (`image`,
`source` or `sbom`); `sbom_mappings` select the `sbom` rule sets that an SBOM (`sbom:` source) is
evaluated with.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.errors import PolicyError
from ci_gate.model import ACTIONS
from ci_gate.policy.gates import registry
from ci_gate.policy.gates.interface import TriggerSpec

BUILTIN_PREFIX = "builtin:"
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
BUNDLE_KEYS = (
    "id",
    "version",
    "name",
    "comment",
    "description",
    "policies",
    "whitelists",
    "mappings",
    "whitelisted_images",
    "blacklisted_images",
    "last_updated",
)
"""The top-level fields of an anchore-engine v1 bundle."""


# --- the policy model ---------------------------------------------------------------------------


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
class RuleSet:
    id: str
    name: str
    version: str
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
class Allowlist:
    id: str
    name: str
    version: str
    items: tuple[AllowlistItem, ...]
    description: str = ""


@dataclass(frozen=True)
class MappingRule:
    id: str
    name: str
    registry: str
    repository: str
    image: ImageRef
    rule_set_ids: tuple[str, ...] = ()
    allowlist_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSelectionRule:
    id: str
    name: str
    registry: str
    repository: str
    image: ImageRef


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    version: str
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

Position = tuple[int, int]


class _Reader:
    """YAML/JSON → plain data plus (line, column) of every node, keyed by its path."""

    def __init__(self) -> None:
        self.positions: dict[tuple[Any, ...], Position] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def read(self, text: str, json_like: bool) -> Any:
        if json_like:
            try:
                json.loads(text)
            except json.JSONDecodeError as error:
                self.problems.append(Problem(f"invalid JSON: {error.msg}", error.lineno, error.colno))
                return None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            self.problems.append(Problem(f"invalid YAML: {error.problem or error}", line, column))
            return None
        except yaml.YAMLError as error:
            if json_like:  # valid JSON that PyYAML's 1.1 parser dislikes: no positions, still usable
                return json.loads(text)
            self.problems.append(Problem(f"invalid YAML: {error}"))
            return None
        if node is None:
            self.problems.append(Problem("the document is empty"))
            return None
        try:
            return self._convert(node, ())
        except yaml.MarkedYAMLError as error:  # a tag no safe loader constructs: `!0`, `!!python/object`
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = str(error.problem or "invalid YAML")[:200]
            self.problems.append(Problem(f"invalid YAML: {problem}", line, column))
            return None

    def _convert(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                key = str(key)
                if key in result:
                    self.problems.append(
                        Problem(
                            f"duplicate key '{key}'",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    )
                result[key] = self._convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(child, (*path, index)) for index, child in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


def read_source(reference: str) -> tuple[str, str]:
    """(text, display name) of a policy file or builtin:NAME."""
    if reference.startswith(BUILTIN_PREFIX):
        name = reference[len(BUILTIN_PREFIX) :]
        packs = builtin_names()
        if name not in packs:
            hint = _nearest(name, packs)
            raise PolicyError(f"no built-in policy '{name}'{hint}; built-in policies: {', '.join(packs)}")
        return resources.files("ci_gate.policy.packs").joinpath(f"{name}.yaml").read_text("utf-8"), reference
    path = Path(reference)
    try:
        return path.read_text("utf-8"), reference
    except FileNotFoundError:
        packs = builtin_names()
        if reference in packs or reference.removesuffix(".yaml") in packs:
            name = reference.removesuffix(".yaml")
            raise PolicyError(f"policy file {reference} does not exist; did you mean builtin:{name}?") from None
        raise PolicyError(
            f"policy file {reference} does not exist; give a path or builtin:NAME ({', '.join(packs)})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"cannot read policy file {reference}: {error}") from None


def builtin_names() -> list[str]:
    directory = resources.files("ci_gate.policy.packs")
    return sorted(p.name[: -len(".yaml")] for p in directory.iterdir() if p.name.endswith(".yaml"))


def _nearest(name: object, choices: Iterable[str]) -> str:
    # A YAML key may be null or a number (`?` alone is {None: None}), and any length: never a crash.
    close = difflib.get_close_matches(str(name)[:200], list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- building and validating ----------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 date-time (`2026-12-30T12:00:00Z`, offsets allowed); a bare date is rejected, as in Anchore."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", text.strip()):
        raise ValueError(text)
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.astimezone(timezone.utc)


class _Builder:
    def __init__(self, reader: _Reader, strict: bool) -> None:
        self.reader = reader
        self.strict = strict
        self.problems = reader.problems
        self.warnings: list[str] = []
        self.lenient = False
        """True while reading a v1 bundle: anchore-engine's schema lets unknown fields pass everywhere."""

    def at(self, path: tuple[Any, ...]) -> Position:
        while path and path not in self.reader.positions:
            path = path[:-1]
        return self.reader.positions.get(path, (0, 0))

    def error(self, path: tuple[Any, ...], message: str) -> None:
        line, column = self.at(path)
        self.problems.append(Problem(message, line, column))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        line, column = self.at(path)
        self.problems.append(Problem(message, line, column, "warning"))
        self.warnings.append(message)

    # generic field access
    def obj(self, value: Any, path: tuple[Any, ...], what: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {_kind(value)}")
            return None
        return value

    def keys(
        self, data: dict[str, Any], path: tuple[Any, ...], what: str, allowed: Iterable[str], lenient: bool = False
    ) -> None:
        """Unknown fields: an error, or a warning where anchore-engine's schema lets them pass (`lenient`).

        `comment` is accepted on every object: Anchore's own published bundles put it everywhere."""
        allowed = [*allowed, *(() if "comment" in allowed else ("comment",))]
        for key in data:
            if key not in allowed:
                message = f"unknown field '{key}' in {what}{_nearest(key, allowed)}; allowed: {', '.join(allowed)}"
                if lenient or self.lenient:
                    self.warn((*path, key), message + "; it is ignored")
                else:
                    self.error((*path, key), message)

    def text(
        self,
        data: dict[str, Any],
        key: str,
        path: tuple[Any, ...],
        what: str,
        required: bool = True,
        default: str = "",
    ) -> str:
        if key not in data or data[key] is None:
            if required:
                self.error(path, f"{what} is missing the required field '{key}'")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error((*path, key), f"'{key}' in {what} must be a string, got {_kind(value)}")
            return default
        return str(value)

    def items(
        self, data: dict[str, Any], key: str, path: tuple[Any, ...], what: str, required: bool = True
    ) -> list[Any]:
        if key not in data or data[key] is None:
            if required:
                self.error(path, f"{what} is missing the required field '{key}'")
            return []
        value = data[key]
        if not isinstance(value, list):
            self.error((*path, key), f"'{key}' in {what} must be a list, got {_kind(value)}")
            return []
        return value

    def strings(
        self, data: dict[str, Any], key: str, path: tuple[Any, ...], what: str, required: bool = True
    ) -> tuple[str, ...]:
        result = []
        for index, value in enumerate(self.items(data, key, path, what, required)):
            if not isinstance(value, str):
                self.error((*path, key, index), f"'{key}' in {what} must hold strings, got {_kind(value)}")
                continue
            result.append(value)
        return tuple(result)

    def pattern(self, value: str, path: tuple[Any, ...], what: str, consequence: str) -> str:
        """A `regexp:` pattern that does not compile: a warning (anchore-engine accepts the document)."""
        if value.startswith("regexp:"):
            try:
                re.compile(value[len("regexp:") :])
            except re.error as error:
                self.warn(path, f"{what}: {value!r} is not a valid regular expression ({error}); {consequence}")
        return value

    def unique(self, entries: list[tuple[str, tuple[Any, ...]]], what: str) -> None:
        seen: dict[str, tuple[Any, ...]] = {}
        for entry_id, path in entries:
            if not entry_id:
                continue
            if entry_id in seen:
                line, _ = self.at(seen[entry_id])
                self.error(path, f"duplicate {what} id '{entry_id}' (first used at line {line})")
            else:
                seen[entry_id] = path

    # the document
    def policy(self, data: Any, source: str) -> Policy | None:
        root = self.obj(data, (), "the policy document")
        if root is None:
            return None
        original = "v2"
        if "policies" in root or "whitelists" in root or str(root.get("version", "")) == "1_0":
            original = "v1"
            self.lenient = True
            root = self.convert_v1(root)
            if root is None:
                return None
        else:
            self.keys(root, (), "the policy", POLICY_KEYS, lenient=True)
        policy_id = self.text(root, "id", (), "the policy")
        name = self.text(root, "name", (), "the policy", required=original == "v2", default=policy_id)
        version = self.text(root, "version", (), "the policy")
        self.version(version, ("version",), original)
        # Where each rule set's and allowlist's problems are: a v1 bundle's unreferenced ones are only warned about.
        spans: dict[tuple[str, str], tuple[int, int]] = {}
        rule_sets = []
        for i, v in enumerate(self.items(root, "rule_sets", (), "the policy")):
            start = len(self.problems)
            rule_sets.append(self.rule_set(v, ("rule_sets", i), original))
            spans[("rule set", _entry_id(v))] = (start, len(self.problems))
        allowlists = []
        for i, v in enumerate(self.items(root, "allowlists", (), "the policy", required=False)):
            start = len(self.problems)
            allowlists.append(self.allowlist(v, ("allowlists", i), original))
            spans[("allowlist", _entry_id(v))] = (start, len(self.problems))
        mappings = [
            self.mapping(v, ("mappings", i)) for i, v in enumerate(self.items(root, "mappings", (), "the policy"))
        ]
        sbom_mappings = [
            self.mapping(v, ("sbom_mappings", i), sbom=True)
            for i, v in enumerate(self.items(root, "sbom_mappings", (), "the policy", required=False))
        ]
        allowed = [
            self.selection(v, ("allowlisted_images", i))
            for i, v in enumerate(self.items(root, "allowlisted_images", (), "the policy", required=False))
        ]
        denied = [
            self.selection(v, ("denylisted_images", i))
            for i, v in enumerate(self.items(root, "denylisted_images", (), "the policy", required=False))
        ]
        self.unique([(r.id, ("rule_sets", i)) for i, r in enumerate(rule_sets) if r], "rule set")
        self.unique([(a.id, ("allowlists", i)) for i, a in enumerate(allowlists) if a], "allowlist")
        self.unique([(m.id, ("mappings", i)) for i, m in enumerate(mappings) if m], "mapping")
        self.unique([(m.id, ("sbom_mappings", i)) for i, m in enumerate(sbom_mappings) if m], "sbom mapping")
        artifact_types = {r.id: r.artifact_type for r in rule_sets if r}
        rule_set_ids = set(artifact_types)
        allowlist_ids = {a.id for a in allowlists if a}
        for key, entries, wanted in (("mappings", mappings, "image"), ("sbom_mappings", sbom_mappings, "sbom")):
            for index, mapping in enumerate(entries):
                if mapping is None:
                    continue
                for position, rule_set_id in enumerate(mapping.rule_set_ids):
                    if rule_set_id not in rule_set_ids:
                        self.error(
                            (key, index, "rule_set_ids", position),
                            f"mapping '{mapping.name}' names rule set '{rule_set_id}', which the policy does "
                            f"not define{_nearest(rule_set_id, rule_set_ids)}; defined: "
                            f"{', '.join(sorted(rule_set_ids)) or 'none'}",
                        )
                    elif artifact_types[rule_set_id] != wanted:
                        self.warn(
                            (key, index, "rule_set_ids", position),
                            f"mapping '{mapping.name}' names rule set '{rule_set_id}', whose artifact_type is "
                            f"{artifact_types[rule_set_id]}: {key} evaluate only {wanted} rule sets, so it is "
                            "skipped",
                        )
                for position, allowlist_id in enumerate(mapping.allowlist_ids):
                    if allowlist_id not in allowlist_ids:
                        self.error(
                            (key, index, "allowlist_ids", position),
                            f"mapping '{mapping.name}' names allowlist '{allowlist_id}', which the policy does "
                            f"not define{_nearest(allowlist_id, allowlist_ids)}; defined: "
                            f"{', '.join(sorted(allowlist_ids)) or 'none'}",
                        )
        if self.items(root, "source_mappings", (), "the policy", required=False):
            self.warn(
                ("source_mappings",),
                "source_mappings select rule sets for source repositories, which ci-gate never evaluates: "
                "they are ignored",
            )
        for index, rule_set in enumerate(rule_sets):
            if rule_set is not None and rule_set.artifact_type == "source":
                self.warn(
                    ("rule_sets", index, "artifact_type"),
                    f"rule set '{rule_set.id}' has artifact_type source: ci-gate evaluates images and SBOMs, "
                    "never source repositories, so it is never evaluated here",
                )
        if original == "v1":
            self.excuse_unreferenced(spans, mappings)
        if any(p.severity == "error" for p in self.problems):
            return None
        return Policy(
            id=policy_id,
            name=name,
            version=version,
            description=self.text(root, "description", (), "", False),
            rule_sets=tuple(r for r in rule_sets if r),
            mappings=tuple(m for m in mappings if m),
            allowlists=tuple(a for a in allowlists if a),
            allowlisted_images=tuple(s for s in allowed if s),
            denylisted_images=tuple(s for s in denied if s),
            sbom_mappings=tuple(m for m in sbom_mappings if m),
            source=source,
            original_format=original,
            document=root,
            warnings=tuple(self.warnings),
        )

    def excuse_unreferenced(
        self, spans: dict[tuple[str, str], tuple[int, int]], mappings: list[MappingRule | None]
    ) -> None:
        """anchore-engine builds only the policies and whitelists a mapping names: the problems of
        the others do not stop it. They are warnings here, and those entries are never evaluated."""
        referenced = {("rule set", i) for m in mappings if m for i in m.rule_set_ids}
        referenced |= {("allowlist", i) for m in mappings if m for i in m.allowlist_ids}
        for (kind, entry_id), (start, end) in spans.items():
            if (kind, entry_id) in referenced:
                continue
            for index in range(start, end):
                problem = self.problems[index]
                if problem.severity != "error":
                    continue
                message = (f"{problem.message} (in {kind} '{entry_id}', which no mapping names: anchore-engine does "
                           "not check it, and it is never evaluated)")
                self.problems[index] = Problem(message, problem.line, problem.column, "warning")
                self.warnings.append(message)

    def version(self, version: str, path: tuple[Any, ...], original: str) -> None:
        accepted = ("1_0",) if original == "v1" else ("2", "v2", "V2")
        if version and version not in accepted:
            self.error(path, f"unsupported version '{version}'; use {' or '.join(repr(a) for a in accepted)}")

    def convert_v1(self, root: dict[str, Any]) -> dict[str, Any] | None:
        """An anchore-engine bundle in the v2 shape (policies→rule_sets, whitelists→allowlists, ...)."""
        self.keys(root, (), "the bundle", BUNDLE_KEYS, lenient=True)
        renamed = {
            "policies": "rule_sets",
            "whitelists": "allowlists",
            "whitelisted_images": "allowlisted_images",
            "blacklisted_images": "denylisted_images",
            "comment": "description",
        }
        converted: dict[str, Any] = {renamed.get(k, k): v for k, v in root.items()}
        # Positions follow the renamed keys so problems still point at the right lines.
        for old, new in renamed.items():
            for path in [p for p in self.reader.positions if p and p[0] == old]:
                self.reader.positions[(new,) + path[1:]] = self.reader.positions[path]  # noqa: RUF005 (3.10)
        for key in ("rule_sets", "allowlists"):
            for entry in converted.get(key) or []:
                if isinstance(entry, dict) and "comment" in entry:
                    entry.setdefault("description", entry.pop("comment"))
        for index, mapping in enumerate(converted.get("mappings") or []):
            if not isinstance(mapping, dict):
                continue
            path = ("mappings", index)
            has_one, has_many = "policy_id" in mapping, "policy_ids" in mapping
            if has_one and has_many:
                self.error(path, "a v1 mapping takes policy_id or policy_ids, not both")
            elif not has_one and not has_many:
                self.error(path, "a v1 mapping needs policy_id or policy_ids")
            ids = [mapping.pop("policy_id")] if has_one else list(mapping.pop("policy_ids", None) or [])
            mapping["rule_set_ids"] = ids
            for position_path in [
                p
                for p in self.reader.positions
                if p[:3] in (("mappings", index, "policy_id"), ("mappings", index, "policy_ids"))
            ]:
                renamed_path = ("mappings", index, "rule_set_ids") + position_path[3:]  # noqa: RUF005 (3.10)
                self.reader.positions[renamed_path] = self.reader.positions[position_path]
            mapping["allowlist_ids"] = mapping.pop("whitelist_ids", [])
            mapping.setdefault("id", f"mapping-{index}")
        for key in ("allowlisted_images", "denylisted_images"):
            for index, rule in enumerate(converted.get(key) or []):
                if isinstance(rule, dict):
                    rule.setdefault("id", f"{key}-{index}")
                    rule.setdefault("name", rule.get("id"))
        for set_index, rule_set in enumerate(converted.get("rule_sets") or []):
            if isinstance(rule_set, dict):
                rule_set.setdefault("name", rule_set.get("id", ""))
                for index, rule in enumerate(rule_set.get("rules") or []):
                    if isinstance(rule, dict):
                        rule.setdefault("id", f"{rule_set.get('id', set_index)}-rule-{index}")
                        rule.setdefault("params", [])
        for list_index, allowlist in enumerate(converted.get("allowlists") or []):
            if isinstance(allowlist, dict):
                allowlist.setdefault("name", allowlist.get("id", ""))
                for index, item in enumerate(allowlist.get("items") or []):
                    if isinstance(item, dict):
                        item.setdefault("id", f"{allowlist.get('id', list_index)}-item-{index}")
        converted.setdefault("name", converted.get("id", ""))
        return converted

    def rule_set(self, value: Any, path: tuple[Any, ...], original: str) -> RuleSet | None:
        data = self.obj(value, path, "a rule set")
        if data is None:
            return None
        self.keys(
            data,
            path,
            "a rule set",
            ("id", "name", "version", "description", "rules", "artifact_type", "last_updated", "comment"),
        )
        rule_set_id = self.text(data, "id", path, "a rule set")
        version = self.text(data, "version", path, f"rule set '{rule_set_id}'")
        self.version(version, (*path, "version"), original)
        artifact = data.get("artifact_type", "image")
        if artifact not in ARTIFACT_TYPES:
            self.error(
                (*path, "artifact_type"),
                f"artifact_type must be {', '.join(ARTIFACT_TYPES[:-1])} or {ARTIFACT_TYPES[-1]}, got {artifact!r}",
            )
            artifact = "image"
        rules = [
            self.rule(v, (*path, "rules", i))
            for i, v in enumerate(self.items(data, "rules", path, f"rule set '{rule_set_id}'"))
        ]
        self.unique([(r.id, (*path, "rules", i)) for i, r in enumerate(rules) if r], "rule")
        if artifact == "sbom":
            for index, rule in enumerate(rules):
                if rule is not None and rule.gate not in SBOM_GATES:
                    self.warn(
                        (*path, "rules", index, "gate"),
                        f"rule '{rule.id}' of sbom rule set '{rule_set_id}': gate '{rule.gate}' reads image "
                        "content an SBOM does not carry (sbom rule sets check "
                        f"{', '.join(SBOM_GATES)})",
                    )
        return RuleSet(
            id=rule_set_id,
            name=self.text(data, "name", path, "a rule set", default=rule_set_id),
            version=version,
            rules=tuple(r for r in rules if r),
            description=self.text(data, "description", path, "", required=False),
            artifact_type=str(artifact),
        )

    def rule(self, value: Any, path: tuple[Any, ...]) -> Rule | None:
        data = self.obj(value, path, "a rule")
        if data is None:
            return None
        self.keys(
            data,
            path,
            "a rule",
            ("id", "gate", "trigger", "action", "params", "description", "recommendation", "controls"),
        )
        rule_id = self.text(data, "id", path, "a rule")
        what = f"rule '{rule_id}'"
        gate_name = self.text(data, "gate", path, what).lower()
        trigger_name = self.text(data, "trigger", path, what).lower()
        action = self.text(data, "action", path, what).upper()
        if action and action not in ACTIONS:
            self.error((*path, "action"), f"{what}: action must be STOP, WARN or GO, got {data['action']!r}")
        raw: dict[str, str] = {}
        positions: dict[str, tuple[Any, ...]] = {}
        for index, param in enumerate(self.items(data, "params", path, what)):
            param_path = (*path, "params", index)
            entry = self.obj(param, param_path, f"a parameter of {what}")
            if entry is None:
                continue
            self.keys(entry, param_path, f"a parameter of {what}", ("name", "value"))
            name = self.text(entry, "name", param_path, f"a parameter of {what}")
            if "value" not in entry:
                self.error(param_path, f"{what}: parameter '{name}' has no value")
                continue
            param_value = entry["value"]
            if not isinstance(param_value, str):
                self.error(
                    (*param_path, "value"),
                    f"{what}: parameter '{name}' must be a string (Anchore "
                    f'parameter values are strings: write "{_scalar(param_value)}"), got {_kind(param_value)}',
                )
                continue
            if name in raw:
                self.error(param_path, f"{what}: parameter '{name}' is given twice")
            raw[name] = param_value
            positions[name] = param_path
        controls = self.strings(data, "controls", path, what, required=False)
        params = self.check_rule(rule_id, gate_name, trigger_name, raw, positions, path) if gate_name else None
        if params is None:
            return None
        return Rule(
            id=rule_id,
            gate=gate_name,
            trigger=trigger_name,
            action=action,
            params=tuple(params.items()),
            description=self.text(data, "description", path, "", required=False),
            recommendation=self.text(data, "recommendation", path, "", required=False),
            controls=controls,
            line=self.at(path)[0],
        )

    def check_rule(
        self,
        rule_id: str,
        gate_name: str,
        trigger_name: str,
        raw: dict[str, str],
        positions: dict[str, tuple[Any, ...]],
        path: tuple[Any, ...],
    ) -> dict[str, str] | None:
        what = f"rule '{rule_id}'"
        if gate_name in registry.END_OF_LIFE:
            replacement = registry.END_OF_LIFE[gate_name]
            message = f"{what}: gate '{gate_name}' is end-of-life" + (f"; use '{replacement}'" if replacement else "")
            if self.strict:
                self.error((*path, "gate"), message)
            else:
                self.warn((*path, "gate"), message + "; the rule is skipped")
            return dict(raw)
        gate = registry.gate(gate_name)
        if gate is None:
            if gate_name in registry.UNAVAILABLE:
                self.error(
                    (*path, "gate"),
                    f"{what}: gate '{gate_name}' cannot be evaluated: {registry.UNAVAILABLE[gate_name]}",
                )
                return None
            names = sorted(registry.gates())
            self.error(
                (*path, "gate"),
                f"{what}: unknown gate '{gate_name}'{_nearest(gate_name, names)}; gates: {', '.join(names)}",
            )
            return None
        trigger = gate.trigger(trigger_name)
        if trigger is None:
            names = [t.name for t in gate.triggers]
            all_names = names + [a for t in gate.triggers for a in t.aliases]
            self.error(
                (*path, "trigger"),
                f"{what}: gate '{gate_name}' has no trigger '{trigger_name}'"
                f"{_nearest(trigger_name, all_names)}; triggers: {', '.join(names)}",
            )
            return None
        return self.check_params(what, gate.name, trigger, raw, positions, path)

    def check_params(
        self,
        what: str,
        gate_name: str,
        trigger: TriggerSpec,
        raw: dict[str, str],
        positions: dict[str, tuple[Any, ...]],
        path: tuple[Any, ...],
    ) -> dict[str, str] | None:
        ok = True
        canonical: dict[str, str] = {}
        for name, value in raw.items():
            spec = trigger.parameter(name)
            if spec is None:
                names = [p.name for p in trigger.parameters]
                self.error(
                    positions[name],
                    f"{what}: {gate_name}/{trigger.name} has no parameter '{name}'"
                    f"{_nearest(name.lower(), names)}; parameters: {', '.join(names) or 'none'}",
                )
                ok = False
                continue
            problem = spec.check(value)
            if problem:
                self.error((*positions[name], "value"), f"{what}: parameter '{spec.name}' {problem}")
                ok = False
                continue
            regex_problem = spec.regex_problem(value)
            if regex_problem:
                self.warn(
                    (*positions[name], "value"),
                    f"{what}: parameter '{spec.name}' {regex_problem}; the rule reports an evaluation "
                    "error instead of checking anything",
                )
            canonical[spec.name] = value
        for spec in trigger.parameters:
            if spec.required and spec.name not in canonical and not any(trigger.parameter(n) is spec for n in raw):
                self.error(
                    path,
                    f"{what}: {gate_name}/{trigger.name} needs the parameter '{spec.name}' ({spec.description})",
                )
                ok = False
        if ok and trigger.cross_check:
            for problem in trigger.cross_check(canonical):
                self.error(path, f"{what}: {problem}")
                ok = False
        if ok and trigger.cross_warnings:
            for problem in trigger.cross_warnings(canonical):
                self.warn(path, f"{what}: {problem}")
        if ok and trigger.never_fires:
            self.warn(path, f"{what}: {gate_name}/{trigger.name} never fires here: {trigger.never_fires}")
        if ok and trigger.needs_feed:
            self.warn(
                path,
                f"{what}: {gate_name}/{trigger.name} needs Anchore's packages feed, which ci-gate "
                "does not have; it never fires here",
            )
        return canonical if ok else None

    def allowlist(self, value: Any, path: tuple[Any, ...], original: str) -> Allowlist | None:
        data = self.obj(value, path, "an allowlist")
        if data is None:
            return None
        self.keys(
            data,
            path,
            "an allowlist",
            ("id", "name", "version", "description", "items", "last_updated", "comment"),
        )
        allowlist_id = self.text(data, "id", path, "an allowlist")
        version = self.text(data, "version", path, f"allowlist '{allowlist_id}'")
        self.version(version, (*path, "version"), original)
        items = []
        for index, entry in enumerate(self.items(data, "items", path, f"allowlist '{allowlist_id}'")):
            item_path = (*path, "items", index)
            item = self.obj(entry, item_path, "an allowlist item")
            if item is None:
                continue
            self.keys(
                item,
                item_path,
                "an allowlist item",
                ("id", "gate", "trigger_id", "expires_on", "description", "reason", "approved_by"),
            )
            item_id = self.text(item, "id", item_path, "an allowlist item")
            expires_text = self.text(item, "expires_on", item_path, "", required=False)
            expires = None
            if expires_text:
                try:
                    expires = parse_timestamp(expires_text)
                except ValueError:
                    self.error(
                        (*item_path, "expires_on"),
                        f"allowlist item '{item_id}': expires_on "
                        f"{expires_text!r} is not an RFC 3339 date-time; write e.g. 2026-12-31T00:00:00Z",
                    )
            gate_name = self.text(item, "gate", item_path, f"allowlist item '{item_id}'")
            if gate_name and registry.gate(gate_name) is None and gate_name.lower() not in registry.UNAVAILABLE:
                self.warn(
                    (*item_path, "gate"),
                    f"allowlist item '{item_id}': unknown gate '{gate_name}'"
                    f"{_nearest(gate_name.lower(), registry.gates())}; it can never match",
                )
            items.append(
                AllowlistItem(
                    id=item_id,
                    gate=gate_name.lower(),
                    trigger_id=self.pattern(
                        self.text(item, "trigger_id", item_path, f"allowlist item '{item_id}'"),
                        (*item_path, "trigger_id"),
                        f"allowlist item '{item_id}'",
                        "the item excepts nothing",
                    ),
                    expires_on=expires,
                    expires_on_text=expires_text,
                    description=self.text(item, "description", item_path, "", required=False),
                    reason=self.text(item, "reason", item_path, "", required=False),
                    approved_by=self.text(item, "approved_by", item_path, "", required=False),
                )
            )
        # Items may share an id (Anchore's published bundles do): anchore-engine keeps every item and
        # checks only policy and allowlist ids for duplicates, so all apply and the first match is reported.
        return Allowlist(
            id=allowlist_id,
            name=self.text(data, "name", path, "an allowlist", default=allowlist_id),
            version=version,
            items=tuple(items),
            description=self.text(data, "description", path, "", required=False),
        )

    def image_ref(self, data: dict[str, Any], path: tuple[Any, ...], what: str) -> ImageRef:
        image = self.obj(data.get("image"), (*path, "image"), f"the image of {what}") if "image" in data else None
        if "image" not in data:
            self.error(path, f"{what} is missing the required field 'image'")
        if image is None:
            return ImageRef("tag", "*")
        self.keys(image, (*path, "image"), f"the image of {what}", ("type", "value"))
        image_type = self.text(image, "type", (*path, "image"), f"the image of {what}")
        if image_type and image_type not in ("tag", "digest", "id"):
            self.error((*path, "image", "type"), f"{what}: image type must be tag, digest or id, got {image_type!r}")
        value = self.text(image, "value", (*path, "image"), f"the image of {what}")
        return ImageRef(image_type, self.pattern(value, (*path, "image", "value"), what, _UNDECIDABLE))

    def mapping(self, value: Any, path: tuple[Any, ...], sbom: bool = False) -> MappingRule | None:
        data = self.obj(value, path, "an sbom mapping" if sbom else "a mapping")
        if data is None:
            return None
        self.keys(
            data,
            path,
            "an sbom mapping" if sbom else "a mapping",
            ("id", "name", "registry", "repository", "image", "rule_set_ids", "allowlist_ids", "description"),
            # Enterprise's sbom mapping schema is not published: unknown fields there are warnings.
            lenient=sbom,
        )
        name = self.text(data, "name", path, "a mapping")
        what = f"mapping '{name}'"
        # An SBOM mapping needs no selector (Enterprise applies it to every SBOM); one given is honoured.
        return MappingRule(
            id=self.text(data, "id", path, what),
            name=name,
            registry=self.pattern(self.text(data, "registry", path, what, required=not sbom, default="*"),
                                  (*path, "registry"), what, _UNDECIDABLE),
            repository=self.pattern(self.text(data, "repository", path, what, required=not sbom, default="*"),
                                    (*path, "repository"), what, _UNDECIDABLE),
            image=self.image_ref(data, path, what) if not sbom or "image" in data else ImageRef("tag", "*"),
            rule_set_ids=self.strings(data, "rule_set_ids", path, what),
            allowlist_ids=self.strings(data, "allowlist_ids", path, what, required=not sbom),
        )

    def selection(self, value: Any, path: tuple[Any, ...]) -> ImageSelectionRule | None:
        data = self.obj(value, path, "an image selection rule")
        if data is None:
            return None
        self.keys(
            data,
            path,
            "an image selection rule",
            ("id", "name", "registry", "repository", "image", "description"),
        )
        name = self.text(data, "name", path, "an image selection rule")
        what = f"image selection rule '{name}'"
        return ImageSelectionRule(
            id=self.text(data, "id", path, what),
            name=name,
            registry=self.pattern(self.text(data, "registry", path, what), (*path, "registry"), what, _UNDECIDABLE),
            repository=self.pattern(
                self.text(data, "repository", path, what), (*path, "repository"), what, _UNDECIDABLE
            ),
            image=self.image_ref(data, path, what),
        )


_UNDECIDABLE = "an evaluation that reaches this rule stops with an error (which rules apply cannot be decided)"


def _entry_id(value: Any) -> str:
    return str(value.get("id", "")) if isinstance(value, dict) else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- entry points ---------------------------------------------------------------------------------


def check_policy(reference: str, strict: bool = True) -> tuple[Policy | None, list[Problem]]:
    """Load and validate; never raises for document problems (only for an unreadable source)."""
    text, source = read_source(reference)
    return check_text(text, source, strict=strict)


class _DuplicateKey(Exception):
    """A mapping repeats a key: the slow path reports where."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


_FastYamlBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastYamlLoader(_FastYamlBase):
    """libyaml's loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key_node, deep=True) for key_node, _ in node.value]
        if len(set(map(str, keys))) != len(keys):
            raise _DuplicateKey(str(keys))
        return super().construct_mapping(node, deep=deep)


def _fast_read(text: str, json_like: bool) -> Any:
    """Data without positions (C parsers), or None when the careful reader must look."""
    try:
        if json_like:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        return yaml.load(text, Loader=_FastYamlLoader)  # a safe loader (libyaml SafeLoader)
    except (ValueError, yaml.YAMLError, _DuplicateKey, RecursionError):
        return None


MAX_POLICY_CHARS = 32 * 1024 * 1024
"""A policy document's size limit: the largest real bundles (long allowlists) are a few megabytes."""
MAX_MESSAGE_CHARS = 1000


def check_text(text: str, source: str, strict: bool = True) -> tuple[Policy | None, list[Problem]]:
    """Parse and validate a policy document; problems (never exceptions) for anything wrong with it."""
    try:
        check_shape(text, "the policy document", MAX_POLICY_CHARS)
    except YamlLimitError as error:
        return None, [Problem(str(error))]
    try:
        return _check_text(text, source, strict)
    except RecursionError:
        return None, [Problem("the policy document nests too deeply to be a policy; it is corrupt or hostile")]


def _check_text(text: str, source: str, strict: bool) -> tuple[Policy | None, list[Problem]]:
    json_like = source.lower().endswith(".json") or text.lstrip().startswith("{")
    # Fast path: parse with the C parsers and build; only a document with problems is read again,
    # slowly, to give every problem its line and column.
    data = _fast_read(text, json_like)
    if data is not None:
        builder = _Builder(_Reader(), strict)
        policy = builder.policy(data, source)
        if policy is not None and not builder.problems:
            return policy, builder.problems
    reader = _Reader()
    data = reader.read(text, json_like)
    if data is None:
        # A document that is only `null` (or `~`, or a bare `!`) parses without a problem of its own.
        return None, reader.problems or [Problem("the document is empty (null); a policy is a mapping")]
    builder = _Builder(reader, strict)
    policy = builder.policy(data, source)
    return policy, builder.problems


def load_policy(reference: str, strict: bool = False) -> Policy:
    """The policy at a path or `builtin:NAME`; PolicyValidationError when it is invalid.

    `strict` is what `policy validate` uses: end-of-life gates are errors (anchore-engine's
    validate_bundle); evaluation loads leniently and skips them with a warning.
    """
    policy, problems = check_policy(reference, strict=strict)
    if policy is None or any(p.severity == "error" for p in problems):
        raise PolicyValidationError(reference, problems)
    return policy
