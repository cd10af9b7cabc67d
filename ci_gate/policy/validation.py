"""Validating a whole policy document: its top-level fields, allowlists, mappings and image
selection rules, and the references between them (a mapping naming a missing rule set)."""

from __future__ import annotations

from typing import Any

from ci_gate.policy import v1
from ci_gate.policy.fields import UNDECIDABLE, entry_id_of, nearest, parse_timestamp
from ci_gate.policy.gates import registry
from ci_gate.policy.model import (
    ALLOWLIST_ITEM_KEYS,
    ALLOWLIST_KEYS,
    IMAGE_REF_KEYS,
    MAPPING_KEYS,
    POLICY_KEYS,
    SELECTION_KEYS,
    Allowlist,
    AllowlistItem,
    ImageRef,
    ImageSelectionRule,
    MappingRule,
    Policy,
    Problem,
)
from ci_gate.policy.rules import RuleReader


class DocumentBuilder(RuleReader):
    """A checked `Policy` from plain data, or None with every problem recorded."""

    def policy(self, data: Any, source: str) -> Policy | None:
        root = self.obj(data, (), "the policy document")
        if root is None:
            return None
        original = "v2"
        if "policies" in root or "whitelists" in root or str(root.get("version", "")) == "1_0":
            original = "v1"
            self.lenient = True
            root = v1.convert_v1(self, root)
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
            spans[("rule set", entry_id_of(v))] = (start, len(self.problems))
        allowlists = []
        for i, v in enumerate(self.items(root, "allowlists", (), "the policy", required=False)):
            start = len(self.problems)
            allowlists.append(self.allowlist(v, ("allowlists", i), original))
            spans[("allowlist", entry_id_of(v))] = (start, len(self.problems))
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
                    at = (key, index, "rule_set_ids", position)
                    defined = self.defined(at, mapping.name, "rule set", rule_set_id, rule_set_ids)
                    if defined and artifact_types[rule_set_id] != wanted:
                        self.warn(
                            at,
                            f"mapping '{mapping.name}' names rule set '{rule_set_id}', whose artifact_type is "
                            f"{artifact_types[rule_set_id]}: {key} evaluate only {wanted} rule sets, so it is "
                            "skipped",
                        )
                for position, allowlist_id in enumerate(mapping.allowlist_ids):
                    self.defined((key, index, "allowlist_ids", position), mapping.name, "allowlist", allowlist_id,
                                 allowlist_ids)
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

    def defined(self, path: tuple[Any, ...], mapping: str, kind: str, entry_id: str, ids: set[str]) -> bool:
        """Whether the `kind` (rule set, allowlist) a mapping names is defined; an error when it is not."""
        if entry_id in ids:
            return True
        self.error(path, f"mapping '{mapping}' names {kind} '{entry_id}', which the policy does not "
                         f"define{nearest(entry_id, ids)}; defined: {', '.join(sorted(ids)) or 'none'}")
        return False

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

    def allowlist(self, value: Any, path: tuple[Any, ...], original: str) -> Allowlist | None:
        data = self.fields(value, path, "an allowlist", ALLOWLIST_KEYS)
        if data is None:
            return None
        allowlist_id, version = self.id_and_version(data, path, "an allowlist", "allowlist", original)
        items = []
        for index, entry in enumerate(self.items(data, "items", path, f"allowlist '{allowlist_id}'")):
            item_path = (*path, "items", index)
            item = self.fields(entry, item_path, "an allowlist item", ALLOWLIST_ITEM_KEYS)
            if item is None:
                continue
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
            if gate_name and registry.gate(gate_name) is None:
                self.warn(
                    (*item_path, "gate"),
                    f"allowlist item '{item_id}': unknown gate '{gate_name}'"
                    f"{nearest(gate_name.lower(), registry.gates())}; it can never match",
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
        image = (self.fields(data["image"], (*path, "image"), f"the image of {what}", IMAGE_REF_KEYS)
                 if "image" in data else None)
        if "image" not in data:
            self.error(path, f"{what} is missing the required field 'image'")
        if image is None:
            return ImageRef("tag", "*")
        image_type = self.text(image, "type", (*path, "image"), f"the image of {what}")
        if image_type and image_type not in ("tag", "digest", "id"):
            self.error((*path, "image", "type"), f"{what}: image type must be tag, digest or id, got {image_type!r}")
        value = self.text(image, "value", (*path, "image"), f"the image of {what}")
        return ImageRef(image_type, self.pattern(value, (*path, "image", "value"), what, UNDECIDABLE))

    def selector(
        self, data: dict[str, Any], key: str, path: tuple[Any, ...], what: str, required: bool = True, default: str = ""
    ) -> str:
        """The registry or repository pattern a mapping or image selection rule matches images with."""
        return self.pattern(self.text(data, key, path, what, required=required, default=default), (*path, key), what,
                            UNDECIDABLE)

    def image_selection(
        self, data: dict[str, Any], path: tuple[Any, ...], kind: str, label: str, sbom: bool = False
    ) -> ImageSelectionRule:
        """What an image selection rule and a mapping (`kind`, named `label 'name'` in messages) share: the id,
        the name and the registry, repository and image patterns.

        An SBOM mapping needs no selector (Enterprise applies it to every SBOM); one given is honoured."""
        name = self.text(data, "name", path, kind)
        what = f"{label} '{name}'"
        return ImageSelectionRule(
            id=self.text(data, "id", path, what),
            name=name,
            registry=self.selector(data, "registry", path, what, required=not sbom, default="*"),
            repository=self.selector(data, "repository", path, what, required=not sbom, default="*"),
            image=self.image_ref(data, path, what) if not sbom or "image" in data else ImageRef("tag", "*"),
        )

    def mapping(self, value: Any, path: tuple[Any, ...], sbom: bool = False) -> MappingRule | None:
        # Enterprise's sbom mapping schema is not published: unknown fields there are warnings.
        data = self.fields(value, path, "an sbom mapping" if sbom else "a mapping", MAPPING_KEYS, lenient=sbom)
        if data is None:
            return None
        selection = self.image_selection(data, path, "a mapping", "mapping", sbom)
        what = f"mapping '{selection.name}'"
        return MappingRule(
            **vars(selection),
            rule_set_ids=self.strings(data, "rule_set_ids", path, what),
            allowlist_ids=self.strings(data, "allowlist_ids", path, what, required=not sbom),
        )

    def selection(self, value: Any, path: tuple[Any, ...]) -> ImageSelectionRule | None:
        data = self.fields(value, path, "an image selection rule", SELECTION_KEYS)
        if data is None:
            return None
        return self.image_selection(data, path, "an image selection rule", "image selection rule")
