"""Anchore's answers → ci-gate's model: the check into an `Evaluation`, the image record and its
content into an `Analysis`, vulnerability listings into each finding's `VulnerabilityDetail`.

Both check shapes are read: the v1 table (the `result` of anchore-engine's apiext swagger.yaml) and
the v2 findings (`PolicyEvaluation` in Anchore Enterprise's OpenAPI spec). The decision is the
**top-level** final action (docs/anchore-backend.md): v2 `evaluations[0].final_action`, v1
`detail.result.final_action` — never the table's per-policy `final_action` nor
`details.policy_action`, which ignore allowlisted and denylisted images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ci_gate.ecosystems import package_type_of_anchore
from ci_gate.errors import BackendError
from ci_gate.model import (
    ACTIONS,
    AllowlistMatch,
    Analysis,
    Distro,
    Evaluation,
    Finding,
    ImageIdentity,
    Location,
    Package,
    RuleOutcome,
    VulnerabilityDetail,
)
from ci_gate.redaction import redact_model, redact_text

__all__ = ["analysis_from_image", "evaluation_from_check", "packages_from_content", "with_vulnerabilities"]

_REASONS = {"whitelisted": "allowlisted", "blacklisted": "denylisted"}
"""v1's reason names → v2's (the model uses v2's)."""

def _text(value: Any) -> str:
    """A string field; v1 fills unset fields with the string "None"."""
    if value is None or value == "None":
        return ""
    return str(value)


def _action(value: Any, where: str) -> str:
    action = _text(value).upper()
    if action not in ACTIONS:
        raise BackendError(f"the Anchore check returned an unknown action {value!r} in {where}; "
                           "expected go, warn or stop")
    return action


# --- the check -----------------------------------------------------------------------------------


def evaluation_from_check(document: Any, api_version: str, digest: str, tag: str) -> Evaluation:
    """The Evaluation from a check answer of either API version."""
    if api_version == "v1" or isinstance(document, list):
        return _from_v1(document, digest, tag)
    return _from_v2(document, digest, tag)


def _policy_rules(policy: Mapping[str, Any] | None, rule_set_ids: Sequence[str] | None
                  ) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """rule id → (rule set id, rule) for the rule sets the matched mapping used (all when unknown)."""
    rules: dict[str, tuple[str, Mapping[str, Any]]] = {}
    if not isinstance(policy, Mapping):
        return rules
    sets = policy.get("rule_sets") or policy.get("policies") or []
    for rule_set in sets if isinstance(sets, list) else []:
        if not isinstance(rule_set, Mapping):
            continue
        set_id = _text(rule_set.get("id"))
        if rule_set_ids is not None and set_id not in rule_set_ids:
            continue
        for rule in rule_set.get("rules") or []:
            if isinstance(rule, Mapping) and rule.get("id"):
                rules[_text(rule["id"])] = (set_id, rule)
    return rules


def _rule_outcomes(rules: Mapping[str, tuple[str, Mapping[str, Any]]], findings: Sequence[Finding],
                   policy_id: str) -> tuple[RuleOutcome, ...]:
    """What was checked, for the reports: every rule of the mapped rule sets, with its fire count."""
    fired: dict[str, int] = {}
    for finding in findings:
        fired[finding.rule_id] = fired.get(finding.rule_id, 0) + 1
    outcomes = []
    for rule_id, (set_id, rule) in rules.items():
        params = {_text(p.get("name")): _text(p.get("value")) for p in rule.get("params") or []
                  if isinstance(p, Mapping)}
        outcomes.append(RuleOutcome(
            rule_id=rule_id, gate=_text(rule.get("gate")).lower(), trigger=_text(rule.get("trigger")).lower(),
            action=_text(rule.get("action")).upper() or "GO", policy_id=policy_id, rule_set_id=set_id,
            params=params, fired=fired.get(rule_id, 0), description=_text(rule.get("description")),
            recommendation=_text(rule.get("recommendation")),
        ))
    return tuple(outcomes)


def _rule_name(rule: Any) -> str | None:
    if isinstance(rule, Mapping):
        return _text(rule.get("name")) or _text(rule.get("id")) or None
    return None


def _problems(problems: Any) -> tuple[str, ...]:
    warnings = []
    for problem in problems if isinstance(problems, list) else []:
        if isinstance(problem, Mapping):
            warnings.append(f"Anchore evaluation problem ({_text(problem.get('severity')) or 'error'}): "
                            f"{_text(problem.get('problem_type'))}: {_text(problem.get('details'))}".strip())
        else:
            warnings.append(f"Anchore evaluation problem: {problem}")
    return tuple(warnings)


def _from_v2(document: Any, digest: str, tag: str) -> Evaluation:
    if not isinstance(document, Mapping) or not isinstance(document.get("evaluations"), list) \
            or not document["evaluations"]:
        raise BackendError("the Anchore check answer has no evaluations (expected a v2 PolicyEvaluation)")
    evaluation = document["evaluations"][0]
    details = evaluation.get("details") or {}
    mapping = evaluation.get("matched_mapping_rule")
    policy = details.get("policy") if isinstance(details.get("policy"), Mapping) else None
    set_ids = mapping.get("rule_set_ids") if isinstance(mapping, Mapping) else None
    rules = _policy_rules(policy, set_ids if isinstance(set_ids, list) else None)
    policy_id = _text(document.get("policy_id"))
    findings = []
    for item in details.get("findings") or []:
        if not isinstance(item, Mapping):
            continue
        match = item.get("allowlist_match")
        allowlisted = None
        if item.get("allowlisted"):
            match = match if isinstance(match, Mapping) else {}
            allowlisted = AllowlistMatch(allowlist_id=_text(match.get("id")), allowlist_name=_text(match.get("name")),
                                         item_id=_text(match.get("matched_rule_id")))
        rule_id = _text(item.get("rule_id"))
        action = _action(item.get("action"), "a finding")
        if allowlisted is not None and action == "GO" and rule_id in rules:
            # Whether Enterprise reports an allowlisted finding's action as "go" is unverified;
            # the model wants the rule's own action, which the policy in the details gives.
            action = _action(rules[rule_id][1].get("action"), "the policy")
        findings.append(Finding(
            gate=_text(item.get("gate")).lower(), trigger=_text(item.get("trigger")).lower(),
            trigger_id=_text(item.get("trigger_id")), action=action, message=_text(item.get("message")),
            rule_id=rule_id, policy_id=policy_id, rule_set_id=_text(item.get("policy_id")),
            allowlisted=allowlisted, origin="base" if item.get("inherited_from_base") is True else None,
            recommendation=_text(item.get("recommendation")),
        ))
    reason = _text(evaluation.get("final_action_reason")) or "policy_evaluation"
    denied = bool(evaluation.get("image_denylisted")) or reason in ("denylisted", "blacklisted")
    allowed = bool(evaluation.get("image_allowlisted")) or reason in ("allowlisted", "whitelisted")
    return _evaluation(
        "check", evaluation.get("final_action"), reason, findings, rules, policy_id, policy,
        image_rule=_image_rule(evaluation, denied, allowed, "matched_denylisted_images_rule",
                               "matched_allowlisted_images_rule"),
        image_digest=_text(document.get("image_digest")) or digest,
        tag=_text(document.get("evaluated_tag")) or tag,
        mapping=mapping,
        problems=evaluation.get("evaluation_problems"),
        evaluated_at=_text(evaluation.get("evaluation_time")),
        policy_action=_text(details.get("policy_action")).upper(),
    )


def _v1_record(document: Any, digest: str) -> Mapping[str, Any]:
    """`[{digest: {tag: [record]}}]` → the record (v1's external wrapping)."""
    try:
        by_digest = document[0]
        by_tag = by_digest.get(digest) or next(iter(by_digest.values()))
        records = next(iter(by_tag.values()))
        record = records[0]
    except (IndexError, KeyError, TypeError, AttributeError, StopIteration):
        raise BackendError("the Anchore v1 check answer is not [{digest: {tag: [evaluation]}}]") from None
    if not isinstance(record, Mapping):
        raise BackendError("the Anchore v1 check answer holds no evaluation record")
    return record


def _from_v1(document: Any, digest: str, tag: str) -> Evaluation:
    record = _v1_record(document, digest)
    detail: Mapping[str, Any] = record["detail"] if isinstance(record.get("detail"), Mapping) else {}
    result: Mapping[str, Any] | None = detail["result"] if isinstance(detail.get("result"), Mapping) else None
    if result is None:
        raise BackendError("the Anchore v1 check answer has no detail.result (the check must ask detail=true)")
    bundle = detail.get("policy") if isinstance(detail.get("policy"), Mapping) else None
    mapping = result.get("matched_mapping_rule")
    policy_ids = None
    if isinstance(mapping, Mapping):
        policy_ids = mapping.get("policy_ids") or ([mapping["policy_id"]] if mapping.get("policy_id") else None)
    rules = _policy_rules(bundle, policy_ids)
    policy_id = _text(record.get("policyId")) or _text(record.get("policy_id"))
    table: Mapping[str, Any] = {}
    for key, value in (result.get("result") or {}).items():
        if key not in ("policy_data", "whitelist_data", "policy_name", "whitelist_names") \
                and isinstance(value, Mapping) and isinstance(value.get("result"), Mapping):
            table = value["result"]
            break
    header = [str(column) for column in table.get("header") or []]
    column = {name: index for index, name in enumerate(header)}
    findings = []
    for row in table.get("rows") or []:
        if not isinstance(row, list):
            continue

        def cell(name: str, row: list[Any] = row) -> Any:
            index = column.get(name)
            return row[index] if index is not None and index < len(row) else None

        whitelisted = cell("Whitelisted")
        allowlisted = None
        if isinstance(whitelisted, Mapping):
            allowlisted = AllowlistMatch(allowlist_id=_text(whitelisted.get("whitelist_id")),
                                         allowlist_name=_text(whitelisted.get("whitelist_name")),
                                         item_id=_text(whitelisted.get("matched_rule_id")))
        gate, trigger = _text(cell("Gate")).lower(), _text(cell("Trigger")).lower()
        rule_set_id = _text(cell("Policy_Id"))
        action = _action(cell("Gate_Action"), "a table row")
        rule_id = ""
        candidates = [rid for rid, (set_id, rule) in rules.items()
                      if set_id == rule_set_id and _text(rule.get("gate")).lower() == gate
                      and _text(rule.get("trigger")).lower() == trigger]
        if len(candidates) == 1:
            # v1 rows carry no rule id; one rule of that gate/trigger in the policy names it.
            rule_id = candidates[0]
            if allowlisted is not None:
                action = _action(rules[rule_id][1].get("action"), "the policy")  # v1 shows "go" once allowlisted
        findings.append(Finding(
            gate=gate, trigger=trigger, trigger_id=_text(cell("Trigger_Id")), action=action,
            message=_text(cell("Check_Output")), rule_id=rule_id, policy_id=policy_id, rule_set_id=rule_set_id,
            allowlisted=allowlisted,
        ))
    reason = _text(result.get("final_action_reason")) or "policy_evaluation"
    return _evaluation(
        "v1 check", result.get("final_action"), reason, findings, rules, policy_id, bundle,
        image_rule=_image_rule(result, reason == "blacklisted", reason == "whitelisted",
                               "matched_blacklisted_images_rule", "matched_whitelisted_images_rule"),
        image_digest=_text(result.get("image_digest")) or digest,
        tag=_text(result.get("tag")) or tag,
        mapping=mapping,
        problems=result.get("evaluation_problems"),
        evaluated_at=_text(record.get("last_evaluation")),
        policy_action=_action(table["final_action"], "the table") if table.get("final_action") else "",
    )


def _image_rule(source: Mapping[str, Any], denied: bool, allowed: bool, denied_key: str, allowed_key: str
                ) -> str | None:
    """The image rule that decided, for an image the policy denied or allowed outright."""
    if denied:
        return _rule_name(source.get(denied_key))
    if allowed:
        return _rule_name(source.get(allowed_key))
    return None


def _evaluation(answer: str, final: Any, reason: str, findings: Sequence[Finding],
                rules: Mapping[str, tuple[str, Mapping[str, Any]]], policy_id: str,
                policy: Mapping[str, Any] | None, *, image_rule: str | None, image_digest: str, tag: str,
                mapping: Any, problems: Any, evaluated_at: str, policy_action: str) -> Evaluation:
    """The tail v1 and v2 share: the final action (an answer without one cannot decide), the rules, the model."""
    if final is None:
        raise BackendError(f"the Anchore {answer} answer has no final_action; cannot decide")
    return Evaluation(
        image_digest=image_digest,
        tag=tag,
        policy_id=policy_id,
        policy_name=_text(policy.get("name")) if policy else "",
        final_action=_action(final, "the evaluation"),
        final_action_reason=_REASONS.get(reason, reason),
        findings=tuple(findings),
        rules=_rule_outcomes(rules, findings, policy_id),
        matched_mapping=_rule_name(mapping),
        warnings=_problems(problems),
        evaluated_at=evaluated_at,
        backend="anchore",
        policy_action=policy_action,
        matched_image_rule=image_rule,
    )


# --- vulnerabilities -----------------------------------------------------------------------------


def _score(item: Mapping[str, Any]) -> float | None:
    for source in ("nvd_data", "vendor_data"):
        for entry in item.get(source) or []:
            if isinstance(entry, Mapping):
                for key in ("cvss_v3", "cvss_v2"):
                    block = entry.get(key)
                    if isinstance(block, Mapping) and isinstance(block.get("base_score"), (int, float)) \
                            and block["base_score"] >= 0:
                        return float(block["base_score"])
    return None


def vulnerability_detail(item: Mapping[str, Any]) -> VulnerabilityDetail:
    """One listing item (v1 or v2) as the model's detail."""
    fix = _text(item.get("fix"))
    kind = _text(item.get("package_type")).lower()
    return VulnerabilityDetail(
        id=_text(item.get("vuln")), severity=_text(item.get("severity")).lower() or "unknown", cvss_score=_score(item),
        fixed_versions=tuple(v.strip() for v in fix.split(",") if v.strip()),
        package_name=_text(item.get("package_name")), package_version=_text(item.get("package_version")),
        package_type=package_type_of_anchore(kind),
        package_path=_text(item.get("package_path")),
        url=_text(item.get("url")), summary=_text(item.get("description")),
    )


def with_vulnerabilities(evaluation: Evaluation, items: Sequence[Mapping[str, Any]]) -> Evaluation:
    """Attach the listing's detail to each `vulnerabilities/package` finding (trigger id `<vuln>+<pkg>`)."""
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        # A trigger id may name the advisory's CVE alias (nvd_data) rather than the listing's id.
        aliases = {_text(entry.get("id")) for entry in item.get("nvd_data") or [] if isinstance(entry, Mapping)}
        for key in {_text(item.get("vuln")), *aliases} - {""}:
            by_id.setdefault(key, []).append(item)
    findings = []
    for finding in evaluation.findings:
        detail = finding.vulnerability
        if detail is None and finding.gate == "vulnerabilities" and "+" in finding.trigger_id:
            vuln_id, package = finding.trigger_id.split("+", 1)
            candidates = by_id.get(vuln_id, [])
            chosen = [c for c in candidates if package in (_text(c.get("package_name")), _text(c.get("package")))
                      or package == _text(c.get("package_path")).rstrip("/").split("/")[-1]]
            if not chosen and len(candidates) == 1:
                chosen = candidates
            if chosen:
                detail = replace(vulnerability_detail(chosen[0]), id=vuln_id)
        findings.append(finding if detail is finding.vulnerability else _replace_detail(finding, detail))
    return replace(evaluation, findings=tuple(findings))


def _replace_detail(finding: Finding, detail: VulnerabilityDetail | None) -> Finding:
    return replace(finding, vulnerability=detail,
                   path=finding.path or (detail.package_path if detail and detail.package_path.startswith("/") else ""))


# --- the image -----------------------------------------------------------------------------------


def packages_from_content(items: Sequence[Mapping[str, Any]]) -> tuple[Package, ...]:
    """Packages from `content/{type}` items (package, version, type, licenses, location, purl)."""
    packages = []
    for item in items:
        name = _text(item.get("package"))
        if not name:
            continue
        kind = _text(item.get("type")).lower()
        licenses = item.get("licenses")
        if not isinstance(licenses, list):
            licenses = [item["license"]] if _text(item.get("license")) else []
        location = _text(item.get("location"))
        packages.append(Package(
            name=name, version=_text(item.get("version")), type=package_type_of_anchore(kind) if kind else "unknown",
            purl=_text(item.get("purl")), licenses=tuple(_text(x) for x in licenses if _text(x)),
            locations=(Location(path=location),) if location.startswith("/") else (),
            found_by="anchore", origin=_text(item.get("origin")) or None,
        ))
    return tuple(packages)


def analysis_from_image(record: Mapping[str, Any], reference: str, packages: Sequence[Package] = (),
                        warnings: Sequence[str] = ()) -> Analysis:
    """What the server's image record says (v2 key names): identity, platform, size, distro."""
    details = [d for d in record.get("image_detail") or [] if isinstance(d, Mapping)]
    tags = tuple(dict.fromkeys(_text(d.get("full_tag")) for d in details if _text(d.get("full_tag"))))
    digests = tuple(dict.fromkeys(_text(d.get("full_digest")) for d in details if _text(d.get("full_digest"))))
    image_id = next((_text(d.get("image_id")) for d in details if _text(d.get("image_id"))), "")
    content: Mapping[str, Any] = record["image_content"] if isinstance(record.get("image_content"), Mapping) else {}
    metadata: Mapping[str, Any] = content["metadata"] if isinstance(content.get("metadata"), Mapping) else {}
    arch = _text(metadata.get("arch"))
    distro_name = _text(metadata.get("distro"))
    size = metadata.get("image_size")
    identity = ImageIdentity(
        reference=reference, scheme="registry", manifest_digest=_text(record.get("image_digest")) or None,
        config_digest=(image_id if image_id.startswith("sha256:") else f"sha256:{image_id}") if image_id else None,
        repo_tags=tags, repo_digests=digests, platform=f"linux/{arch}" if arch else "",
        created=_text(record.get("created_at")), total_size=size if isinstance(size, int) else 0,
    )
    distro = Distro(id=distro_name, version_id=_text(metadata.get("distro_version"))) if distro_name else None
    analysis = Analysis(identity=identity, distro=distro, packages=tuple(packages), warnings=tuple(warnings),
                        tool_version="anchore")
    # The same final redaction pass as a local analysis: the server's package metadata reaches reports.
    return redact_model(analysis, redact_text)
