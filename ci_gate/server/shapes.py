"""Response bodies exactly as Anchore shapes them (reference/anchore.md §1-2), v2 and v1.

Pure functions of the store's records and the model; the routes only pick which one to send.
ci-gate's additions are extra keys only (a failure reason, the evaluation's `ci_gate` object), so a
client written for Anchore reads every body unchanged.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ci_gate.ecosystems import anchore_content_type_of, anchore_type_of, is_anchore_os_type
from ci_gate.model import Analysis, Evaluation, Package
from ci_gate.redaction import redact_base64_text
from ci_gate.server.store import ACCOUNT, ApiKeyRow, ImageRecord, PolicyRow


def anchore_package_type(package: Package) -> str:
    """syft's package type → Anchore's package_type in vulnerability and content listings."""
    return anchore_type_of(package.type)


def content_type_of(package: Package) -> str:
    """The `/content/{type}` a package is listed under: os for distro packages, else its ecosystem."""
    return anchore_content_type_of(package.type)


def is_os_type(package_type: str) -> bool:
    """Anchore splits by `nonos_package_types`; ecosystems newer than that list (rust …) are not
    distro packages, so the test here is membership of the os list, which agrees on every listed type."""
    return is_anchore_os_type(package_type)


def _split_tag(full_tag: str) -> tuple[str, str, str]:
    """registry, repo, tag of a normalised full tag (HOST/REPO:TAG)."""
    host, _, rest = full_tag.partition("/")
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag


# --- errors ---------------------------------------------------------------------------------------

_ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 403: "access_denied", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 408: "request_timeout", 413: "payload_too_large",
                415: "unsupported_media_type", 429: "too_many_requests",
                500: "internal_error", 501: "not_implemented", 503: "unavailable"}


def error_v2(status: int, message: str, detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`ApiErrorResponse` {code, error_type, message, detail} (§1.1)."""
    return {"code": status, "error_type": _ERROR_TYPES.get(status, "error"), "message": message,
            "detail": dict(detail or {})}


def error_v1(status: int, message: str, detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What anchore-engine actually returns: {message, httpcode, detail: {..., error_codes: []}} (§1.1)."""
    return {"message": message, "httpcode": status, "detail": {**dict(detail or {}), "error_codes": []}}


# --- images ---------------------------------------------------------------------------------------


def image_v2(record: ImageRecord) -> dict[str, Any]:
    """`AnchoreImage` (§1.2)."""
    meta = record.metadata
    history = [{"from_status": c.from_status, "to_status": c.to_status, "timestamp": c.timestamp, "source": c.source}
               for c in record.status_history]
    if record.failure_reason and history:
        history[-1]["detail"] = record.failure_reason
    details = []
    for full_tag, seen in record.tags:
        registry, repo, tag = _split_tag(full_tag)
        details.append({
            "image_digest": record.digest, "image_id": meta.get("image_id"), "registry": registry, "repo": repo,
            "tag": tag, "full_tag": full_tag, "full_digest": f"{registry}/{repo}@{record.digest}",
            "dockerfile": redact_base64_text(record.dockerfile), "account_name": record.account,
            "tag_detected_at": seen,
            "created_at": seen, "last_updated": record.last_updated,
        })
    body: dict[str, Any] = {
        "image_digest": record.digest, "parent_digest": record.digest, "account_name": record.account,
        "annotations": dict(record.annotations), "image_status": "active", "image_type": "docker",
        "analysis_status": record.analysis_status, "analysis_status_detail": history,
        "record_version": record.record_version, "created_at": record.created_at,
        "last_updated": record.last_updated, "analyzed_at": record.analyzed_at,
        "image_content": {"metadata": _metadata(meta)},
        "image_detail": details,
    }
    if record.failure_reason:
        body["analysis_failure_reason"] = record.failure_reason
    return body


def image_v1(record: ImageRecord) -> dict[str, Any]:
    """The v1 image record (`make_response_image`, §1.2)."""
    meta = record.metadata
    details = []
    for full_tag, seen in record.tags:
        registry, repo, tag = _split_tag(full_tag)
        details.append({
            "registry": registry, "repo": repo, "tag": tag, "digest": record.digest, "imageId": meta.get("image_id"),
            "dockerfile": redact_base64_text(record.dockerfile), "fulltag": full_tag,
            "fulldigest": f"{registry}/{repo}@{record.digest}",
            "tag_detected_at": seen, "created_at": seen, "last_updated": record.last_updated,
            "userId": record.account, "imageDigest": record.digest,
        })
    metadata = _metadata(meta)
    metadata.pop("extended_support", None)
    body: dict[str, Any] = {
        "imageDigest": record.digest, "parentDigest": record.digest, "userId": record.account,
        "image_type": "docker", "analysis_status": record.analysis_status, "image_status": "active",
        "analyzed_at": record.analyzed_at, "created_at": record.created_at, "last_updated": record.last_updated,
        "annotations": dict(record.annotations), "image_content": {"metadata": metadata}, "image_detail": details,
    }
    if record.failure_reason:
        body["analysis_failure_reason"] = record.failure_reason
    return body


def _metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {"arch": meta.get("arch"), "distro": meta.get("distro"), "distro_version": meta.get("distro_version"),
            "extended_support": False, "dockerfile_mode": meta.get("dockerfile_mode"),
            "image_size": meta.get("image_size"), "layer_count": meta.get("layer_count")}


# --- policies -------------------------------------------------------------------------------------


def policy_v2(row: PolicyRow, detail: bool = True) -> dict[str, Any]:
    """`PolicyRecord` (§1.7)."""
    return {"policy_id": row.policy_id, "active": row.active, "account_name": row.account,
            "policy_source": row.policy_source, "name": row.name, "description": row.description,
            "created_at": row.created_at, "last_updated": row.last_updated,
            "policy": dict(row.document) if detail else None}


def policy_v1(row: PolicyRow, detail: bool = True) -> dict[str, Any]:
    """The v1 policy record (§1.7): the document under `policybundle`."""
    body = {"policyId": row.policy_id, "active": row.active, "userId": row.account,
            "policy_source": row.policy_source, "name": row.name, "description": row.description,
            "created_at": row.created_at, "last_updated": row.last_updated}
    if detail:
        body["policybundle"] = dict(row.document)
    return body


def api_key(row: ApiKeyRow, value: str | None = None) -> dict[str, Any]:
    """`UserApiKey` (§1.1); the value only in the answer that created it."""
    return {"name": row.name, "description": row.description, "expires_at": row.expires_at,
            "created_at": row.created_at, "updated_at": row.updated_at, "version": 1, "value": value,
            "status": row.status}


# --- evaluations ----------------------------------------------------------------------------------


def check_v2(document: dict[str, Any], record: ImageRecord, policy: PolicyRow, detail: bool) -> dict[str, Any]:
    """v2 `PolicyEvaluation` (§2.3) from ci-gate's evaluation JSON (already v2-shaped)."""
    document = dict(document)
    document["policy_id"] = policy.policy_id
    document["image_digest"] = record.digest
    evaluations = []
    for item in document.get("evaluations", []):
        item = dict(item)
        details = dict(item.get("details", {}))
        if detail:
            details["policy"] = dict(policy.document)
        else:
            details.pop("findings", None)
        item["details"] = details
        evaluations.append(item)
    document["evaluations"] = evaluations
    return document


_V1_REASONS = {"allowlisted": "whitelisted", "denylisted": "blacklisted"}


def check_v1(evaluation: Evaluation, analysis: Analysis, record: ImageRecord, policy: PolicyRow, tag: str,
             detail: bool) -> list[dict[str, Any]]:
    """The v1 check answer (§2.2): digest → tag → [record with the engine document and its table]."""
    image_id = str(record.metadata.get("image_id") or (analysis.identity.config_digest or "").removeprefix("sha256:"))
    final_action = evaluation.final_action.lower()
    rows = []
    for finding in evaluation.findings:
        allowlisted = finding.allowlisted
        whitelisted: Any = False if allowlisted is None else {
            "whitelist_name": allowlisted.allowlist_name, "whitelist_id": allowlisted.allowlist_id,
            "matched_rule_id": allowlisted.item_id}
        rows.append([image_id, tag, finding.trigger_id, finding.gate, finding.trigger, finding.message,
                     "go" if allowlisted is not None else finding.action.lower(), whitelisted, finding.rule_set_id])
    policy_action = (evaluation.policy_action or evaluation.final_action).lower()
    created = _epoch(evaluation.evaluated_at)
    status = "fail" if final_action == "stop" else "pass"
    engine_document = {
        "user_id": ACCOUNT, "image_id": image_id, "tag": tag, "bundle": dict(policy.document),
        "matched_mapping_rule": {"name": evaluation.matched_mapping} if evaluation.matched_mapping else False,
        "matched_whitelisted_images_rule": ({"name": evaluation.matched_image_rule}
                                            if evaluation.final_action_reason == "allowlisted" else False),
        "matched_blacklisted_images_rule": ({"name": evaluation.matched_image_rule}
                                            if evaluation.final_action_reason == "denylisted" else False),
        "final_action": final_action,
        "final_action_reason": _V1_REASONS.get(evaluation.final_action_reason, evaluation.final_action_reason),
        "result": {
            image_id: {"result": {
                "header": ["Image_Id", "Repo_Tag", "Trigger_Id", "Gate", "Trigger", "Check_Output", "Gate_Action",
                           "Whitelisted", "Policy_Id"],
                "row_count": len(rows), "rows": rows, "final_action": policy_action}},
            "policy_data": [], "whitelist_data": [], "policy_name": policy.name, "whitelist_names": [],
        },
        "created_at": created, "last_modified": created,
        "evaluation_problems": [{"severity": "warn", "problem_type": "PolicyEvaluationWarning", "details": w}
                                for w in evaluation.warnings],
        "image_digest": record.digest, "status": status,
    }
    entry = {"policyId": policy.policy_id, "status": status, "last_evaluation": evaluation.evaluated_at,
             "detail": {"result": engine_document, "policy": dict(policy.document)} if detail else {}}
    return [{record.digest: {tag: [entry]}}]


def _epoch(text: str) -> int:
    try:
        return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return int(time.time())


# --- vulnerabilities ------------------------------------------------------------------------------


def _score(value: float | None) -> float:
    return -1.0 if value is None else float(value)


def vulnerability_item(match: Any, inherited: bool, v2: bool) -> dict[str, Any]:
    """One `ImagePackageVulnerability` (v2) or v1 vulnerability item (§1.5)."""
    package: Package = match.package
    location = package.locations[0].path if package.locations else "pkgdb"
    ids = [match.vulnerability_id, *[a for a in match.aliases if a.startswith("CVE-")]]
    nvd_id = next((i for i in ids if i.startswith("CVE-")), match.vulnerability_id)
    nvd = [{"id": nvd_id,
            "cvss_v2": {"base_score": -1.0, "exploitability_score": -1.0, "impact_score": -1.0},
            "cvss_v3": {"base_score": _score(match.cvss_v3_base_score),
                        "exploitability_score": _score(match.cvss_v3_exploitability_score),
                        "impact_score": _score(match.cvss_v3_impact_score)}}]
    vendor = []
    if match.vendor_cvss_v3_base_score is not None:
        vendor.append({"id": match.vulnerability_id,
                       "cvss_v2": {"base_score": -1.0, "exploitability_score": -1.0, "impact_score": -1.0},
                       "cvss_v3": {"base_score": _score(match.vendor_cvss_v3_base_score),
                                   "exploitability_score": _score(match.vendor_cvss_v3_exploitability_score),
                                   "impact_score": _score(match.vendor_cvss_v3_impact_score)}})
    fix = ", ".join(match.fixed_versions) if match.fixed_versions else "None"
    item: dict[str, Any] = {
        "vuln": match.vulnerability_id, "severity": (match.severity or "unknown").capitalize(),
        "url": match.url or "None", "fix": fix,
        "package": f"{package.name}-{package.version}", "package_name": package.name,
        "package_version": package.version, "package_type": anchore_package_type(package),
        "package_cpe": "None", "package_path": location, "feed": "vulnerabilities",
        "feed_group": (match.ecosystem or "None").lower(), "will_not_fix": False,
        "nvd_data": nvd, "vendor_data": vendor,
    }
    if v2:
        item.update({"description": match.summary or "", "purl": package.purl or "None",
                     "detected_at": None, "fix_observed_at": None,
                     "suggested_fix_version": match.fixed_versions[0] if match.fixed_versions else None,
                     "is_kev": False, "epss": [], "annotation_status": None, "annotation_uuid": None,
                     "inherited_from_base": inherited})
    else:
        item["package_cpe23"] = "None"
    return item


def vulnerabilities_v2(digest: str, vulnerability_type: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"image_digest": digest, "base_digest": None, "base_image_problems": [],
            "vulnerability_type": vulnerability_type, "extended_support": False, "vulnerabilities": list(items)}


def vulnerabilities_v1(digest: str, vulnerability_type: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"imageDigest": digest, "vulnerability_type": vulnerability_type, "vulnerabilities": list(items)}


# --- content --------------------------------------------------------------------------------------


def content_item(package: Package, v2: bool) -> dict[str, Any]:
    """One `/content/{type}` package item (§1.6)."""
    item: dict[str, Any] = {
        "package": package.name, "version": package.version, "size": "N/A", "type": anchore_package_type(package),
        "origin": str(package.metadata.get("maintainer") or package.metadata.get("author") or "N/A"),
        "licenses": list(package.licenses) or ["Unknown"],
        "location": package.locations[0].path if package.locations else "pkgdb", "cpes": [],
    }
    if v2:
        item.update({"metadata_type": package.type, "metadata": {}, "purl": package.purl or None})
    else:
        item["license"] = " ".join(package.licenses) or "Unknown"
    return item
