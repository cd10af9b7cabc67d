"""Kubernetes admission on `ci-gate serve` (docs/admission.md).

Two routes, both answered from the server's stored analyses:

- `POST /admission/v1/validate`: a validating admission webhook (AdmissionReview admission.k8s.io/v1)
  for Pods and every pod template; every image of `containers`, `initContainers` and
  `ephemeralContainers` is checked.
- `POST /admission/v1/gatekeeper`: OPA Gatekeeper's external-data provider (ProviderRequest →
  ProviderResponse, one item per image).

Modes per selector follow Anchore's admission controller: `policy` (admit only when analysed and the
check passes), `analysis` (admit when analysed), `breakglass` (admit, warn). The API server calls
webhooks without serve's credentials, so these routes are public; they answer only over TLS unless
the configuration says a proxy terminates it (`requireTls: false`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ci_gate.errors import CiGateError, UsageError
from ci_gate.redaction import escape_control

if TYPE_CHECKING:
    from ci_gate.server.service import Service

from ci_gate.server.admission_config import (  # noqa: F401 (parse_config and load_config are used from here)
    CHECKED_KINDS,
    GATEKEEPER_API_VERSIONS,
    MAX_MESSAGE_CHARS,
    REQUESTOR,
    REVIEW_MAX_BYTES,
    AdmissionConfig,
    Selector,
    load_config,
    parse_config,
)
from ci_gate.server.admission_review import (
    ReviewError,
    images_of,
    review_request,
    review_response,
    warnings_of,
)

LOG = logging.getLogger("ci_gate.server.admission")
CACHE_ENTRIES = 4096
"""Tags and checks remembered at most; past it the cache starts over (entries expire in minutes anyway)."""

# --- decisions ---------------------------------------------------------------------------------------



@dataclass
class ImageVerdict:
    """The decision for one image reference."""

    reference: str
    mode: str
    policy_id: str | None
    allowed: bool = False
    digest: str | None = None
    reasons: list[str] = field(default_factory=list)
    """Why it is denied (or, in breakglass, why it would be)."""
    warnings: list[str] = field(default_factory=list)
    """WARN findings and breakglass notes."""
    final: bool = True
    """False while the answer can change without the image changing (queued, analysing)."""
    queued: bool = False


@dataclass(frozen=True)
class CheckResult:
    """A stored image checked against one policy, cached."""

    final_action: str
    stops: tuple[str, ...]
    warns: tuple[str, ...]
    policy_id: str


class Admission:
    """Decisions for reviews and provider requests, from serve's records."""

    def __init__(self, service: Service, config: AdmissionConfig) -> None:
        self.service = service
        self.config = config
        self._lock = threading.Lock()
        self._tags: dict[str, tuple[float, str]] = {}
        self._checks: dict[tuple[str, str, str, str, str], tuple[float, CheckResult]] = {}

    # --- selectors ----------------------------------------------------------------------------------

    def select(self, namespace: str | None, resource: Mapping[str, str] | None,
               reference: str) -> tuple[str, str | None]:
        """(mode, policy id) for one image: the first selector that matches, else the defaults."""
        namespace_pairs: dict[str, str] = {}
        if namespace is not None:
            namespace_pairs = {**self.config.namespace_labels.get(namespace, {}),
                               "kubernetes.io/metadata.name": namespace, "name": namespace}
        for selector in self.config.selectors:
            if selector.resource_type == "image":
                matched = bool(selector.value_regex.search(reference))
            else:
                pairs = namespace_pairs if selector.resource_type == "namespace" else (resource or {})
                matched = any(selector.key_regex.search(key) and selector.value_regex.search(value)
                              for key, value in pairs.items())
            if matched:
                return selector.mode, selector.policy_id or self.config.default_policy_id
        return self.config.default_mode, self.config.default_policy_id

    # --- one image ------------------------------------------------------------------------------------

    def decide(self, reference: str, mode: str, policy_id: str | None, dry_run: bool) -> ImageVerdict:
        from ci_gate.sources.registry import parse_reference

        verdict = ImageVerdict(reference=reference, mode=mode, policy_id=policy_id)
        try:
            parsed = parse_reference(reference)
        except CiGateError:
            verdict.reasons.append("not a valid image reference")
            verdict.allowed = mode == "breakglass"
            return verdict
        repository = f"{parsed.host}/{parsed.repository}"
        if parsed.digest and parsed.digest in self.config.allowed_digests:
            verdict.allowed, verdict.digest = True, parsed.digest
            return verdict
        if any(parsed.host == entry or repository == entry or repository.startswith(entry + "/")
               for entry in self.config.allowed_registries):
            verdict.allowed, verdict.digest = True, parsed.digest
            return verdict
        full_tag = f"{repository}:{parsed.tag or 'latest'}" if parsed.tag or not parsed.digest else None
        digest, problem = (parsed.digest, None) if parsed.digest else self.resolve(reference, full_tag or "")
        verdict.digest = digest
        if digest is None:
            verdict.reasons.append(f"cannot resolve the tag to a digest: {problem}")
            return self._finish(verdict)
        if digest in self.config.allowed_digests:
            verdict.allowed = True
            return verdict
        record = self.service.store.get_image(digest)
        if record is None:
            earlier = [r.digest for r in self.service.store.list_images(full_tag)] if full_tag else []
            moved = f"; the tag pointed at {earlier[-1]} when it was gated" if earlier else ""
            verdict.final = False
            pullable = self._may_pull(parsed.host)
            if not pullable:
                verdict.reasons.append(f"not analysed{moved}, and serve may not pull from {parsed.host} "
                                       "(serve --allow-registry)")
            elif self.config.request_analysis and mode != "breakglass" and not dry_run:
                self.service.store.add_image(digest, f"{repository}@{digest}", full_tag, {"requestor": REQUESTOR},
                                             None, False)
                self.service.pool.notify()
                verdict.queued = True
                verdict.reasons.append(f"not analysed yet{moved}: queued for analysis, retry when it is analysed")
            elif self.config.request_analysis and dry_run and mode != "breakglass":
                verdict.reasons.append(f"not analysed yet{moved} (dry run: not queued)")
            else:
                verdict.reasons.append(f"not analysed{moved}: add it to serve (ci-gate gate --backend anchore, or "
                                       "POST /v2/images) first")
            return self._finish(verdict)
        if record.analysis_status != "analyzed":
            if record.analysis_status == "analysis_failed":
                verdict.reasons.append(f"analysis failed: {record.failure_reason or 'no reason recorded'}")
            else:
                verdict.final = False
                verdict.reasons.append(f"analysis in progress ({record.analysis_status}); retry when it is analysed")
            return self._finish(verdict)
        if mode == "analysis":
            verdict.allowed = True
            return verdict
        tag = full_tag or (record.tags[0][0] if record.tags else f"{repository}:latest")
        try:
            result = self.check(digest, tag, policy_id, f"{record.analyzed_at or ''}#{record.analysis_count}")
        except CiGateError as error:
            verdict.reasons.append(f"cannot check it: {error}")
            return self._finish(verdict)
        verdict.policy_id = result.policy_id
        verdict.warnings.extend(f"{reference}: {warning}" for warning in result.warns)
        if result.final_action == "STOP":
            verdict.reasons.extend(result.stops or ("the policy's final action is STOP",))
        else:
            verdict.allowed = True
        return self._finish(verdict)

    def _finish(self, verdict: ImageVerdict) -> ImageVerdict:
        """Breakglass admits whatever the check said, and says what it would have denied."""
        if verdict.mode == "breakglass" and not verdict.allowed:
            verdict.allowed = True
            shown = "; ".join(verdict.reasons[: self.config.max_reasons]) or "no check"
            verdict.warnings.insert(0, f"breakglass: {verdict.reference} admitted without the policy's approval "
                                       f"({shown})")
        return verdict

    def _may_pull(self, host: str) -> bool:
        from ci_gate.sources.registry_auth import check_registry_allowed

        try:
            check_registry_allowed(host, self.service.config.source)
        except CiGateError:
            return False
        return True

    def resolve(self, reference: str, full_tag: str) -> tuple[str | None, str | None]:
        """(digest, None) or (None, why): the registry is asked at most once per tagCacheSeconds."""
        from ci_gate.server.service import ApiError
        from ci_gate.sources.registry import parse_reference
        from ci_gate.sources.registry_auth import check_registry_allowed

        now = time.monotonic()
        with self._lock:
            cached = self._tags.get(full_tag)
        if cached is not None and now - cached[0] < self.config.tag_cache_seconds:
            return cached[1], None
        try:  # the route is public: serve contacts only the registries it may pull from
            check_registry_allowed(parse_reference(reference).host, self.service.config.source)
            digest = self.service.resolve_digest(reference)
        except CiGateError as error:
            return None, str(error)
        except ApiError as error:
            return None, error.message
        with self._lock:
            if len(self._tags) > CACHE_ENTRIES:
                self._tags.clear()
            self._tags[full_tag] = (now, digest)
        return digest, None

    def check(self, digest: str, tag: str, policy_id: str | None, analysis_version: str) -> CheckResult:
        from ci_gate.server.service import ApiError

        try:
            row = self.service.policy_row(policy_id)
        except ApiError as error:
            raise CiGateError(error.message) from None
        key = (digest, tag, row.policy_id, row.content_digest, analysis_version)
        now = time.monotonic()
        with self._lock:
            cached = self._checks.get(key)
        if cached is not None and now - cached[0] < self.config.evaluation_cache_seconds:
            return cached[1]
        try:
            evaluation, *_ = self.service.evaluate(digest, tag, row.policy_id)
        except ApiError as error:
            raise CiGateError(error.message) from None
        policy = self.service.parsed_policy(row)
        fixes = {(rule_set.id, rule.id): rule.recommendation for rule_set in policy.rule_sets
                 for rule in rule_set.rules if rule.recommendation}
        stops, warns = [], []
        for finding in evaluation.findings:
            text = f"{finding.gate}/{finding.trigger}: {finding.message}"
            fix = fixes.get((finding.rule_set_id, finding.rule_id))
            if finding.effective_action == "STOP":
                stops.append(f"{text} (fix: {fix})" if fix else text)
            elif finding.effective_action == "WARN":
                warns.append(f"WARN {text}")
        if evaluation.final_action == "STOP" and evaluation.final_action_reason == "denylisted":
            stops.insert(0, f"the image is on the policy's denylist ({evaluation.matched_image_rule})")
        result = CheckResult(evaluation.final_action.upper(), tuple(stops), tuple(warns), row.policy_id)
        with self._lock:
            if len(self._checks) > CACHE_ENTRIES:
                self._checks.clear()
            self._checks[key] = (now, result)
        return result

    # --- AdmissionReview -----------------------------------------------------------------------------

    def review(self, document: Any) -> dict[str, Any]:
        started = time.perf_counter()
        request = review_request(document)
        uid = request["uid"]
        operation = request.get("operation")
        kind = request["kind"]["kind"]
        namespace = request.get("namespace") or None
        dry_run = request.get("dryRun") is True
        obj: dict[str, Any] = request.get("object") or {}
        name = str(request.get("name") or "")
        if operation in ("DELETE", "CONNECT"):
            return review_response(uid, True, None, [])  # nothing will run because of this request
        if kind not in CHECKED_KINDS:
            refusal = (f"ci-gate does not check {kind} objects; register the webhook only for Pods and "
                       f"{', '.join(CHECKED_KINDS[1:])}")
            self._log(request, kind, namespace, name, dry_run, False, [], [refusal], started)
            return review_response(uid, False, refusal, [])
        uses, labels = images_of(kind, obj)
        metadata: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
        name = name or str(metadata.get("name") or metadata.get("generateName") or "")
        resource_pairs = {**labels, "name": name}
        verdicts: dict[str, ImageVerdict] = {}
        for use in uses:
            if use.reference not in verdicts:
                mode, policy_id = self.select(namespace, resource_pairs, use.reference)
                verdicts[use.reference] = self.decide(use.reference, mode, policy_id, dry_run)
        denied = [(use, verdicts[use.reference]) for use in uses if not verdicts[use.reference].allowed]
        warnings = warnings_of([w for verdict in verdicts.values() for w in verdict.warnings])
        message: str | None = None
        if denied:
            parts = []
            for use, verdict in denied:
                reasons = verdict.reasons[: self.config.max_reasons]
                more = len(verdict.reasons) - len(reasons)
                policy = f", policy {verdict.policy_id}" if verdict.mode == "policy" and verdict.policy_id else ""
                parts.append(f"{use.reference} in {use.where} ({verdict.mode} mode{policy}): " + "; ".join(reasons)
                             + (f"; and {more} more" if more > 0 else ""))
            message = escape_control(f"ci-gate denied {len(denied)} image use(s): " + " | ".join(parts))
            if len(message) > MAX_MESSAGE_CHARS:
                message = message[: MAX_MESSAGE_CHARS - 40] + " … (see serve's decision log)"
        self._log(request, kind, namespace, name, dry_run, not denied, list(verdicts.values()),
                  [message] if message else [], started)
        return review_response(uid, not denied, message, warnings)

    def _log(self, request: Mapping[str, Any], kind: str, namespace: str | None, name: str, dry_run: bool,
             allowed: bool, verdicts: Sequence[ImageVerdict], reasons: Sequence[str], started: float) -> None:
        images = [{"image": v.reference, "digest": v.digest, "mode": v.mode, "policy": v.policy_id,
                   "allowed": v.allowed, "queued": v.queued} for v in verdicts]
        LOG.info("%s", escape_control(
            "admission decision " + json.dumps({
                "uid": request.get("uid"), "operation": request.get("operation"), "kind": kind,
                "namespace": namespace, "name": name, "dry_run": dry_run,
                "decision": "allow" if allowed else "deny", "images": images, "reasons": list(reasons),
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 2)},
                separators=(",", ":"))))

    # --- Gatekeeper external data ----------------------------------------------------------------------

    def provide(self, document: Any) -> dict[str, Any]:
        if not isinstance(document, dict) or document.get("kind") != "ProviderRequest" or \
                document.get("apiVersion") not in GATEKEEPER_API_VERSIONS:
            raise ReviewError("the body must be a ProviderRequest (apiVersion externaldata.gatekeeper.sh/v1beta1, "
                              "kind ProviderRequest)")
        request = document.get("request")
        keys = request.get("keys") if isinstance(request, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise ReviewError("request.keys must be a list of image references (non-empty strings)")
        items = []
        final = True
        for key in keys:
            mode, policy_id = self.select(None, None, key)
            verdict = self.decide(key, mode, policy_id, dry_run=False)
            final = final and verdict.final
            value = {"allowed": verdict.allowed, "mode": verdict.mode, "policy_id": verdict.policy_id,
                     "digest": verdict.digest, "reasons": verdict.reasons[: self.config.max_reasons],
                     "warnings": warnings_of(verdict.warnings)}
            error = "" if verdict.allowed else escape_control(
                f"denied: {'; '.join(verdict.reasons[: self.config.max_reasons])}")
            items.append({"key": key, "value": value, "error": error})
        LOG.info("%s", escape_control("admission gatekeeper " + json.dumps(
            {"keys": keys, "denied": [i["key"] for i in items if i["error"]]}, separators=(",", ":"))))
        # Gatekeeper caches idempotent answers: an image still queued or analysing will change its answer.
        return {"apiVersion": document["apiVersion"], "kind": "ProviderResponse",
                "response": {"idempotent": final, "items": items, "systemError": ""}}


# --- HTTP ----------------------------------------------------------------------------------------------


def routes(service: Service) -> list[Route]:
    """The admission routes when serve runs with --admission-config (else none)."""
    path = service.config.admission_config
    if path is None:
        return []
    config = load_config(path)
    if config.require_tls and service.config.tls_cert is None:
        raise UsageError("--admission-config needs --tls-cert and --tls-key: the API server calls webhooks over "
                         "HTTPS only (set requireTls: false only when a proxy in front of serve terminates TLS)")
    admission = Admission(service, config)
    return [Route("/admission/v1/validate", _endpoint(admission, admission.review), methods=["POST"]),
            Route("/admission/v1/gatekeeper", _endpoint(admission, admission.provide), methods=["POST"])]


def _endpoint(admission: Admission, decide: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        if admission.config.require_tls and request.url.scheme != "https":
            return _bad(403, "the admission routes answer only over HTTPS (serve --tls-cert/--tls-key)")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # drained, not kept, past the limit: the caller reads the 400
            size += len(chunk)
            if size <= REVIEW_MAX_BYTES:
                chunks.append(chunk)
        if size > REVIEW_MAX_BYTES:
            return _bad(400, f"the body is larger than {REVIEW_MAX_BYTES // (1024 * 1024)} MiB")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json":
            return _bad(400, f"unsupported content type {content_type}; send application/json")
        try:
            document = json.loads(b"".join(chunks) or b"null")
        except (ValueError, RecursionError):
            return _bad(400, "the body is not valid JSON")
        try:
            return JSONResponse(await run_in_threadpool(decide, document))
        except ReviewError as error:
            return _bad(400, escape_control(str(error)))
        except Exception as error:  # a bug: logged with its traceback; 500 makes the API server apply failurePolicy
            LOG.exception("internal error on %s", request.url.path)
            return _bad(500, f"internal error: {type(error).__name__}")

    return endpoint


def _bad(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)
