"""Legacy anchore-engine v1 bundles, converted to the v2 shape the rest of ci-gate reads.

The renames are anchore-engine's own (policies→rule_sets, whitelists→allowlists, ...); the
positions of renamed keys follow them, so a problem in a v1 bundle still names its line.
"""

from __future__ import annotations

from typing import Any

from ci_gate.policy.fields import FieldReader

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


def convert_v1(fields: FieldReader, root: dict[str, Any]) -> dict[str, Any]:
    """An anchore-engine bundle in the v2 shape (policies→rule_sets, whitelists→allowlists, ...)."""
    fields.keys(root, (), "the bundle", BUNDLE_KEYS, lenient=True)
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
        for path in [p for p in fields.reader.positions if p and p[0] == old]:
            fields.reader.positions[(new,) + path[1:]] = fields.reader.positions[path]  # noqa: RUF005 (3.10)
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
            fields.error(path, "a v1 mapping takes policy_id or policy_ids, not both")
        elif not has_one and not has_many:
            fields.error(path, "a v1 mapping needs policy_id or policy_ids")
        ids = [mapping.pop("policy_id")] if has_one else list(mapping.pop("policy_ids", None) or [])
        mapping["rule_set_ids"] = ids
        for position_path in [
            p
            for p in fields.reader.positions
            if p[:3] in (("mappings", index, "policy_id"), ("mappings", index, "policy_ids"))
        ]:
            renamed_path = ("mappings", index, "rule_set_ids") + position_path[3:]  # noqa: RUF005 (3.10)
            fields.reader.positions[renamed_path] = fields.reader.positions[position_path]
        mapping["allowlist_ids"] = mapping.pop("whitelist_ids", [])
        mapping.setdefault("id", f"mapping-{index}")
    for key in ("allowlisted_images", "denylisted_images"):
        for index, rule in enumerate(converted.get(key) or []):
            if isinstance(rule, dict):
                rule.setdefault("id", f"{key}-{index}")
                rule.setdefault("name", rule.get("id"))
    for rule in _named_and_numbered(converted.get("rule_sets"), "rules", "rule"):
        rule.setdefault("params", [])
    _named_and_numbered(converted.get("allowlists"), "items", "item")
    converted.setdefault("name", converted.get("id", ""))
    return converted


def _named_and_numbered(lists: Any, entries_key: str, entry_kind: str) -> list[dict[str, Any]]:
    """v1 rule sets (allowlists) may omit their name and their rules' (items') ids: the name defaults
    to the id, an entry's id to `<list id>-<kind>-<n>`. Returns the entries that are mappings."""
    entries: list[dict[str, Any]] = []
    for list_index, named in enumerate(lists or []):
        if isinstance(named, dict):
            named.setdefault("name", named.get("id", ""))
            for index, entry in enumerate(named.get(entries_key) or []):
                if isinstance(entry, dict):
                    entry.setdefault("id", f"{named.get('id', list_index)}-{entry_kind}-{index}")
                    entries.append(entry)
    return entries
