"""Policies as anchore-engine manages them, and the policy spec (`anchore-cli policy add|activate|get|describe`).

* `POST /v1/policies` of an id that exists replaces its document (the engine's catalog `save_policy`);
  the policy keeps its active state, so replacing the active policy changes the gate at once. Under
  v2 it answers 409, as Enterprise's API does.
* `PUT /policies/{id}` activates when `?active=true` or the body says `"active": true` (anchore-cli
  sends the record it fetched with `active` set); deactivating the active policy is refused, and a
  body `policyId` other than the path's is refused, both with the engine's messages.
* Under v1 a v2 document (the built-in packs, or one added as v2) is returned as a v1 bundle
  (`policies`, `whitelists`, `policy_ids`, version `1_0`, v1 trigger names), as anchore-engine would
  hold it; a document added as a v1 bundle is returned as it was added.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.routing import Route

from ci_gate.server import shapes
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service, validate_policy
from ci_gate.server.store import ACCOUNT, PolicyRow

_V1_WORDS = (("allowlist", "whitelist"), ("denylist", "blacklist"))


def _v1_word(text: str) -> str:
    for new, old in _V1_WORDS:
        text = text.replace(new, old)
    return text


def _v1_rule(rule: dict[str, Any]) -> dict[str, Any]:
    from ci_gate.policy.gates import registry

    out = dict(rule)  # description, recommendation, controls kept: ci-gate reads them back, the engine ignores them
    gate = registry.gates().get(str(rule.get("gate", "")).lower())
    trigger = gate.trigger(str(rule.get("trigger", ""))) if gate is not None else None
    if trigger is not None:
        out["trigger"] = next((a for a in trigger.aliases if a == _v1_word(trigger.name)), trigger.name)
    params = []
    for param in rule.get("params") or []:
        if not isinstance(param, dict):
            params.append(param)
            continue
        name, value = str(param.get("name", "")), param.get("value")
        spec = trigger.parameter(name) if trigger is not None else None
        if spec is not None:
            name = next((a for a in spec.aliases if a == _v1_word(spec.name)), spec.name)
            if spec.type == "EnumString" and isinstance(value, str) and _v1_word(value) in spec.allowed_values:
                value = _v1_word(value)
        params.append({"name": name, "value": value})
    out["params"] = params
    return out


def v1_bundle(document: dict[str, Any]) -> dict[str, Any]:
    """A v2 policy document as an anchore-engine v1 bundle (the reverse of the v1 reader's renames)."""
    if "rule_sets" not in document and "policies" in document:
        return dict(document)  # already a v1 bundle
    bundle: dict[str, Any] = {"id": document.get("id"), "version": "1_0", "name": document.get("name", ""),
                              "comment": document.get("description", "")}
    bundle["policies"] = [
        {"id": rule_set.get("id"), "version": "1_0", "name": rule_set.get("name", ""),
         "comment": rule_set.get("description", ""), "rules": [_v1_rule(r) for r in rule_set.get("rules") or []]}
        for rule_set in document.get("rule_sets") or [] if rule_set.get("artifact_type", "image") == "image"]
    bundle["whitelists"] = [
        {"id": allowlist.get("id"), "version": "1_0", "name": allowlist.get("name", ""),
         "comment": allowlist.get("description", ""),
         "items": [{k: v for k, v in item.items() if k != "description"} for item in allowlist.get("items") or []]}
        for allowlist in document.get("allowlists") or []]
    image_rule_sets = {p["id"] for p in bundle["policies"]}
    bundle["mappings"] = [
        {"id": mapping.get("id"), "name": mapping.get("name", ""), "registry": mapping.get("registry"),
         "repository": mapping.get("repository"), "image": mapping.get("image"),
         "policy_ids": [i for i in mapping.get("rule_set_ids") or [] if i in image_rule_sets],
         "whitelist_ids": list(mapping.get("allowlist_ids") or [])}
        for mapping in document.get("mappings") or []]
    for old, new in (("whitelisted_images", "allowlisted_images"), ("blacklisted_images", "denylisted_images")):
        bundle[old] = [dict(rule) for rule in document.get(new) or []]
    return bundle


def policy_v1(row: PolicyRow, detail: bool = True) -> dict[str, Any]:
    body = shapes.policy_v1(row, detail)
    if detail:
        body["policybundle"] = v1_bundle(dict(row.document))
    return body


def list_policies(call: Call) -> Any:
    detail = call.flag("detail", False)
    rows = call.service.store.list_policies()
    return [policy_v1(r, detail) if call.v1 else shapes.policy_v2(r, detail) for r in rows]


def get_policy(call: Call) -> Any:
    row = call.service.policy_row(call.path_params["policy_id"])
    detail = call.flag("detail", True)
    return [policy_v1(row, detail)] if call.v1 else shapes.policy_v2(row, detail)


def add_policy(call: Call) -> Any:
    """Add; under v1 an existing id has its document replaced (the policy keeps its active state)."""
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a policy document (a JSON object)")
    policy = validate_policy(body, str(body.get("id") or "policy"))
    name = str(body.get("name") or policy.name or "")
    policy_id = str(body.get("id") or hashlib.md5(f"{ACCOUNT}:{name}".encode(), usedforsecurity=False).hexdigest())
    store = call.service.store
    row = store.add_policy(policy_id, name or policy_id, str(body.get("description") or body.get("comment") or ""),
                           body)
    if row is None and not call.v1:  # Enterprise's v2 answers 409; update with PUT
        raise ApiError(409, f"a policy with id {policy_id!r} already exists; update it with PUT /policies/{policy_id}")
    if row is None:
        row = store.update_policy(policy_id, body, False)
    if row is None:
        raise ApiError(500, f"failed to add policy {policy_id} to the catalog")
    return policy_v1(row) if call.v1 else shapes.policy_v2(row)


def update_policy(call: Call) -> Any:
    policy_id = call.path_params["policy_id"]
    body = call.json()
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "the request body must be a policy record (a JSON object)")
    body = body or {}
    current = call.service.policy_row(policy_id)
    body_id = body.get("policyId" if call.v1 else "policy_id")
    if body_id is not None and body_id != policy_id:
        raise ApiError(500, f"policyId in route is different from policyId in payload: {policy_id} != {body_id}")
    activate = call.flag("active") or body.get("active") is True
    if current.active and body.get("active") is False and not call.flag("active"):
        raise ApiError(500, "cannot deactivate an active policy - can only activate an inactive policy")
    document_key = "policybundle" if call.v1 else "policy"
    document = body.get(document_key)
    if document is not None:
        if not isinstance(document, dict):
            raise ApiError(400, f"{document_key} must be a policy document (a JSON object)")
        if document == v1_bundle(dict(current.document)) and "rule_sets" in current.document:
            document = None  # the v1 view of a stored v2 document sent back unchanged (anchore-cli activate)
        else:
            validate_policy(document, policy_id)
    row = call.service.store.update_policy(policy_id, document, activate)
    if row is None:
        raise ApiError(404, "cannot locate specified policyId")
    return [policy_v1(row)] if call.v1 else shapes.policy_v2(row)


def policy_spec(call: Call) -> Any:
    """`GateSpec` list: every gate, trigger and parameter the embedded engine evaluates."""
    from ci_gate.policy.gates import registry

    gates = []
    for gate in sorted(registry.gates().values(), key=lambda g: g.name):
        gates.append({
            "name": gate.name, "description": gate.description + (" (ci-gate extension)" if gate.extension else ""),
            "state": "active", "superceded_by": None,
            "triggers": [{
                "name": trigger.name, "description": trigger.description, "state": "active", "superceded_by": None,
                "parameters": [{
                    "name": parameter.name, "description": parameter.description,
                    "required": parameter.required, "example": parameter.example or None, "state": "active",
                    "superceded_by": None,
                    "validator": {"type": parameter.type,
                                  **({"enum": list(parameter.allowed_values)} if parameter.allowed_values else {})},
                } for parameter in trigger.parameters],
            } for trigger in gate.triggers],
        })
    for old, new in registry.END_OF_LIFE.items():
        gates.append({"name": old, "description": f"end-of-life gate{f'; use {new}' if new else ''}",
                      "state": "eol", "superceded_by": new or None, "triggers": []})
    return gates


def routes(service: Service, route: Any) -> list[Route]:
    return [
        route("/v1/system/policy_spec", policy_spec, ["GET"], service),
        route("/v2/system/policy-spec", policy_spec, ["GET"], service),
    ]
