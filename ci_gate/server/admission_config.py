"""The admission configuration of `ci-gate serve --admission-config` (docs/admission.md): selectors,
modes and limits, read and checked once at start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_gate.errors import UsageError

MODES = ("policy", "analysis", "breakglass")
RESOURCE_TYPES = ("namespace", "resource", "image")
REVIEW_MAX_BYTES = 3 * 1024 * 1024
"""Largest review read: an object is at most ~1.5 MiB in etcd, and a review carries object and oldObject."""
REVIEW_API_VERSION = "admission.k8s.io/v1"
GATEKEEPER_API_VERSIONS = ("externaldata.gatekeeper.sh/v1beta1", "externaldata.gatekeeper.sh/v1alpha1")
MAX_WARNING_CHARS = 256
"""The API server may truncate longer warnings (Dynamic Admission Control, 'Response')."""
MAX_WARNINGS_TOTAL_CHARS = 4000
MAX_MESSAGE_CHARS = 3000
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job")
CHECKED_KINDS = ("Pod", "CronJob", *TEMPLATE_KINDS)
REQUESTOR = "ci-gate-admission"


# --- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """One `policySelectors` entry: what it matches, and the mode and policy it picks."""

    resource_type: str
    """namespace (its name and labels), resource (the object's name and labels) or image (its reference)."""
    key_regex: re.Pattern[str]
    """Matched (searched, as Go's MatchString does) against label keys; `name` matches the name."""
    value_regex: re.Pattern[str]
    """Matched against the label's value, the name, or the image reference."""
    mode: str
    """policy, analysis or breakglass."""
    policy_id: str | None
    """The stored policy to check against; None = serve's active policy."""


@dataclass(frozen=True)
class AdmissionConfig:
    """The `--admission-config` file, parsed."""

    selectors: tuple[Selector, ...] = ()
    """First match wins, in file order."""
    default_mode: str = "policy"
    """The mode when no selector matches (fail closed: policy)."""
    default_policy_id: str | None = None
    """The policy when no selector names one; None = serve's active policy."""
    request_analysis: bool = True
    """Queue images serve has not analysed (never for dry-run requests)."""
    allowed_registries: tuple[str, ...] = ()
    """HOST[:PORT] or HOST[:PORT]/REPO-PREFIX admitted without a check."""
    allowed_digests: frozenset[str] = frozenset()
    """Manifest digests admitted without a check."""
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Labels per namespace name (reviews do not carry them; serve holds no cluster credentials)."""
    require_tls: bool = True
    """Answer only over HTTPS."""
    tag_cache_seconds: float = 30.0
    """How long a tag → digest resolution is reused before asking the registry again."""
    evaluation_cache_seconds: float = 300.0
    """How long a check result is reused (a new vulnerability store is seen after this)."""
    max_reasons: int = 3
    """Reasons shown per denied image."""


def load_config(path: Path) -> AdmissionConfig:
    """Parse the YAML file; one UsageError line naming the key on any problem."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read --admission-config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"--admission-config {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_config(document, str(path))


def parse_config(document: Any, name: str) -> AdmissionConfig:
    def fail(message: str) -> UsageError:
        return UsageError(f"--admission-config {name}: {message}; see docs/admission.md")

    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise fail("the file must be a mapping")
    known = {"policySelectors", "defaultMode", "defaultPolicyId", "requestAnalysis", "allowlist", "namespaceLabels",
             "requireTls", "tagCacheSeconds", "evaluationCacheSeconds", "maxReasons"}
    unknown = sorted(str(key) for key in document if key not in known)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def regex(text: Any, where: str) -> re.Pattern[str]:
        if not isinstance(text, str):
            raise fail(f"{where} must be a string (a regular expression)")
        try:
            return re.compile(text)
        except re.error as error:
            raise fail(f"{where} is not a valid regular expression: {error}") from None

    def mode(value: Any, where: str) -> str:
        if value not in MODES:
            raise fail(f"{where} must be one of {', '.join(MODES)}, not {value!r}")
        return str(value)

    def policy_id(value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise fail(f"{where} must be a policy id (a string)")
        return value

    selectors = []
    entries = document.get("policySelectors") or []
    if not isinstance(entries, list):
        raise fail("policySelectors must be a list")
    for index, entry in enumerate(entries):
        where = f"policySelectors[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("selector"), dict):
            raise fail(f"{where} needs selector: {{resourceType, selectorKeyRegex, selectorValueRegex}}")
        selector = entry["selector"]
        resource_type = selector.get("resourceType")
        if resource_type not in RESOURCE_TYPES:
            raise fail(f"{where}.selector.resourceType must be one of {', '.join(RESOURCE_TYPES)}")
        reference = entry.get("policyReference") or {}
        if not isinstance(reference, dict):
            raise fail(f"{where}.policyReference must be a mapping with policyId")
        # Anchore's controller names the bundle policyBundleId; both spellings are read.
        selected_policy = policy_id(reference.get("policyId", reference.get("policyBundleId")),
                                    f"{where}.policyReference.policyId")
        selectors.append(Selector(resource_type, regex(selector.get("selectorKeyRegex", ".*"),
                                                       f"{where}.selector.selectorKeyRegex"),
                                  regex(selector.get("selectorValueRegex"), f"{where}.selector.selectorValueRegex"),
                                  mode(entry.get("mode"), f"{where}.mode"), selected_policy))
    allowlist = document.get("allowlist") or {}
    if not isinstance(allowlist, dict):
        raise fail("allowlist must be a mapping with registries and digests")
    registries = allowlist.get("registries") or []
    digests = allowlist.get("digests") or []
    if not isinstance(registries, list) or not all(isinstance(r, str) and r and "*" not in r for r in registries):
        raise fail("allowlist.registries must be a list of HOST[:PORT] or HOST[:PORT]/REPO-PREFIX (no wildcards)")
    if not isinstance(digests, list) or not all(isinstance(d, str) and re.fullmatch(r"sha256:[a-f0-9]{64}", d)
                                                 for d in digests):
        raise fail("allowlist.digests must be a list of sha256:<64 lower-case hex> manifest digests")
    labels = document.get("namespaceLabels") or {}
    if not isinstance(labels, dict) or not all(
            isinstance(v, dict) and all(isinstance(k2, str) and isinstance(v2, str) for k2, v2 in v.items())
            for v in labels.values()):
        raise fail("namespaceLabels must map a namespace name to its labels (strings)")
    booleans = {}
    for key, default in (("requestAnalysis", True), ("requireTls", True)):
        value = document.get(key, default)
        if not isinstance(value, bool):
            raise fail(f"{key} must be true or false")
        booleans[key] = value
    numbers = {}
    for key, default_number in (("tagCacheSeconds", 30.0), ("evaluationCacheSeconds", 300.0), ("maxReasons", 3)):
        value = document.get(key, default_number)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise fail(f"{key} must be a number ≥ 0")
        numbers[key] = value
    return AdmissionConfig(
        selectors=tuple(selectors), default_mode=mode(document.get("defaultMode", "policy"), "defaultMode"),
        default_policy_id=policy_id(document.get("defaultPolicyId"), "defaultPolicyId"),
        request_analysis=booleans["requestAnalysis"], allowed_registries=tuple(r.rstrip("/") for r in registries),
        allowed_digests=frozenset(digests), namespace_labels={str(k): dict(v) for k, v in labels.items()},
        require_tls=booleans["requireTls"], tag_cache_seconds=float(numbers["tagCacheSeconds"]),
        evaluation_cache_seconds=float(numbers["evaluationCacheSeconds"]),
        max_reasons=max(1, int(numbers["maxReasons"])))


