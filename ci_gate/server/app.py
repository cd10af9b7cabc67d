"""`ci-gate serve`: the subset of Anchore's v2 (and v1) API that CI clients use, on the embedded engine.

Routes parse, authenticate and shape; `Service` does the work against the store, the worker pool
and the policy engine. Bodies follow reference/anchore.md §1-2 exactly (v2 snake_case objects,
v1 camelCase arrays, both error shapes), so the Anchore client and anchorectl work unchanged. What
anchore-engine's clients need beyond that (swagger, tag lookups, registries, subscriptions, events,
system, metadata) lives in the `routes_*` modules.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ci_gate import __version__
from ci_gate.ecosystems import ANCHORE_CONTENT_TYPES
from ci_gate.errors import CiGateError, UsageError
from ci_gate.model import Analysis, from_dict
from ci_gate.policy.documents import check_text, load_policy
from ci_gate.policy.model import Policy
from ci_gate.server import admission, keys, shapes
from ci_gate.server.accounts import AccountDirectory, AccountError
from ci_gate.server.auth import ADMIN_USER, AuthFailure, Gatekeeper, Principal
from ci_gate.server.limits import (
    DEFAULT_REQUEST_TIMEOUT,
    MAX_BODY_BYTES,
    BodyError,
    Throttled,
    guarded_protocol,
    json_problem,
    read_body,
)
from ci_gate.server.registry_work import BUSY_RETRY_AFTER, DEFAULT_DEADLINE, RegistryBusy, RegistryFailure, RegistryPool
from ci_gate.server.registry_work import CALLERS as REGISTRY_CALLERS
from ci_gate.server.registry_work import resolve_digest as resolve_registry_digest
from ci_gate.server.startup import permission_warnings
from ci_gate.server.store import ACCOUNT, ANALYZED, ApiKeyRow, ImageRecord, PolicyRow, Store
from ci_gate.server.worker import WorkerOptions, WorkerPool
from ci_gate.sources.interface import SourceOptions

LOG = logging.getLogger("ci_gate.server")

CURRENT_ACCOUNT: ContextVar[str] = ContextVar("ci_gate_serve_account", default=ACCOUNT)
"""The account the request being handled acts in (set per request by _dispatch)."""

DIGEST_PATTERN = re.compile(r"^sha256:[a-fA-F0-9]{64}$")
BASE64_PATTERN = re.compile(r"^[a-zA-Z0-9+/=]+$")
VULNERABILITY_TYPES = ("os", "non-os", "all")
BUILTIN_POLICIES = ("default", "cis", "dod")


@dataclass(frozen=True)
class ServerConfig:
    """How `ci-gate serve` runs."""

    data_dir: Path
    """Where the SQLite database and scratch files live."""
    admin_password: str = field(repr=False)
    """The `admin` user's password (from CI_GATE_ADMIN_PASSWORD)."""
    vuln_db: Path | None = None
    """The vulnerability store for checks and listings; None = the default location."""
    workers: int = 2
    """Analysis threads; 0 only queues (another process on the same data dir analyses)."""
    source: SourceOptions = field(default_factory=SourceOptions)
    """How workers reach registries (credentials, CA bundle, insecure registries)."""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    """Seconds a client has to send its request headers, and again its body."""
    registry_deadline: float = DEFAULT_DEADLINE
    """Seconds an API call waits for registry work (resolving a tag) in all."""
    tls_cert: Path | None = None
    """PEM certificate chain to serve HTTPS with (with tls_key); None = plain HTTP."""
    tls_key: Path | None = None
    """PEM private key of tls_cert."""
    admission_config: Path | None = None
    """The Kubernetes admission configuration (docs/admission.md); None = no admission routes."""


class ApiError(Exception):
    """An error answer: status, one-line message, optional detail object."""

    def __init__(self, status: int, message: str, detail: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def normalise_tag(text: str) -> str:
    """`nginx` → `docker.io/library/nginx:latest`: the full tag Anchore stores and matches."""
    from ci_gate.sources.registry import parse_reference

    try:
        reference = parse_reference(text)
    except CiGateError as error:
        raise ApiError(400, f"invalid tag {text!r}: {error}") from None
    return f"{reference.host}/{reference.repository}:{reference.tag or 'latest'}"


class Service:
    """The server's behaviour, independent of HTTP."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._stores: dict[str, Store] = {}
        self._pools: dict[str, WorkerPool] = {}
        self._accounts_lock = threading.RLock()
        self._started = False
        try:
            admin_store = self._open_store(ACCOUNT, config.data_dir)
            self.accounts = AccountDirectory(config.data_dir)
            for account in self.accounts.accounts():
                self._open_store(account.name, self.accounts.store_dir(account.name))
        except (OSError, sqlite3.Error) as error:
            raise UsageError(f"cannot open the data dir {config.data_dir}: {error}; pass a writable "
                             "--data-dir") from None
        for warning in permission_warnings(config.data_dir, admin_store.path):
            LOG.warning("%s", warning)
        self.gatekeeper = Gatekeeper(admin_store, config.admin_password, directory=self.accounts,
                                     find_key=self.find_key)
        from ci_gate.server.records import CredentialBox

        self.credentials = CredentialBox(config.admin_password)
        self.registry = RegistryPool(deadline=config.registry_deadline)
        self.registry_callers: anyio.CapacityLimiter | None = None
        self._analyses: OrderedDict[tuple[str, str, str | None], Analysis] = OrderedDict()
        self._policies: dict[tuple[str, str, str], Policy] = {}
        self._cache_lock = threading.Lock()
        self.started_at = datetime.now(timezone.utc)

    # --- accounts: one store (and worker pool) each; the request's account picks them ----------------

    @property
    def store(self) -> Store:
        """The store of the account the current request acts in (the admin account outside requests)."""
        return self.store_for(CURRENT_ACCOUNT.get())

    @property
    def pool(self) -> WorkerPool:
        """The worker pool of the current request's account."""
        self.store_for(CURRENT_ACCOUNT.get())
        return self._pools[CURRENT_ACCOUNT.get()]

    def store_for(self, account: str) -> Store:
        """An account's store; an account that does not exist is refused, never mapped to another's store."""
        store = self._stores.get(account)
        if store is not None:
            return store
        if not self.accounts.exists(account):
            raise ApiError(403, f"Access Denied: no account {account[:64]!r}", {"permission_required": "*"})
        return self._open_store(account, self.accounts.store_dir(account))

    def _open_store(self, account: str, directory: Path) -> Store:
        with self._accounts_lock:
            if account in self._stores:
                return self._stores[account]
            if account != ACCOUNT:
                directory.parent.mkdir(mode=0o700, exist_ok=True)
            store = Store(directory)
            pool = WorkerPool(store, WorkerOptions(source=self.config.source, scratch_dir=directory / "scratch",
                                                   source_for=functools.partial(self.source_for, store=store)),
                              self.config.workers)
            self._stores[account] = store
            self._pools[account] = pool
            if self._started:
                seed_policies(store)
                pool.start()
            return store

    def find_key(self, value: str) -> ApiKeyRow | None:
        """The active API key with this value, in whichever account's store holds it."""
        for store in list(self._stores.values()):
            key = store.api_key_for_value(value)
            if key is not None:
                return key
        return None

    def start(self) -> None:
        with self._accounts_lock:
            self._started = True
            for account, store in self._stores.items():
                seed_policies(store)
                self._pools[account].start()
        from ci_gate.server.vuln_watch import VulnWatcher, store_stamp

        # Watches the admin account's tags (the store outside a request); other accounts are not watched yet.
        self.vuln_watcher = VulnWatcher(lambda: self.store, lambda digest: self.vulnerabilities(digest, "all", True),
                                        lambda: store_stamp(self.config.vuln_db))
        self.vuln_watcher.start()

    def stop(self) -> None:
        if getattr(self, "vuln_watcher", None) is not None:
            self.vuln_watcher.stop()
        self.registry.stop()
        for account, store in self._stores.items():
            if self._pools[account].stop():
                store.close()  # else a worker still uses it; the process is exiting anyway
        self.accounts.close()

    def seed_policies(self) -> None:
        """The built-in packs, `builtin:default` active, on a data dir that has no policy yet."""
        seed_policies(self.store)

    # --- images ---------------------------------------------------------------------------------

    def add_image(self, body: Any, force: bool) -> ImageRecord:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object (ImageAnalysisRequest)")
        source = body.get("source")
        if not source and (body.get("tag") or body.get("digest")):  # v1's deprecated top-level fields
            if not all(isinstance(body.get(key) or "", str) for key in ("tag", "digest", "dockerfile")):
                raise ApiError(400, "tag, digest and dockerfile must be strings")
            if body.get("digest"):
                if not body.get("tag"):
                    raise ApiError(400, "For a digest-based analysis, the tag property must also be populated")
                reference = body["tag"].rsplit(":", 1)[0] if ":" in body["tag"].rsplit("/", 1)[-1] else body["tag"]
                source = {"digest": {"pull_string": f"{reference}@{body['digest']}", "tag": body["tag"],
                                     "dockerfile": body.get("dockerfile")}}
            else:
                source = {"tag": {"pull_string": body["tag"], "dockerfile": body.get("dockerfile")}}
        if not isinstance(source, dict):
            raise ApiError(400, "the request needs a source: {\"source\": {\"tag\": {\"pull_string\": "
                                "\"HOST/REPO:TAG\"}}} or a digest source")
        kinds = [kind for kind in ("tag", "digest", "archive", "import") if source.get(kind)]
        if len(kinds) != 1:
            raise ApiError(400, "exactly one source type (tag, digest, archive or import) must be set")
        kind = kinds[0]
        if kind in ("archive", "import"):
            raise ApiError(501, f"ci-gate serve does not support {kind} sources; add the image by tag or digest")
        spec = source[kind]
        if not isinstance(spec, dict):
            raise ApiError(400, f"source.{kind} must be an object")
        pull_string = spec.get("pull_string") or spec.get("pullstring")
        if not isinstance(pull_string, str) or not pull_string:
            raise ApiError(400, f"source.{kind}.pull_string is required")
        dockerfile = spec.get("dockerfile") or None
        if dockerfile is not None and (not isinstance(dockerfile, str) or not BASE64_PATTERN.match(dockerfile)):
            raise ApiError(400, "dockerfile must be base64 without line breaks (pattern ^[a-zA-Z0-9+/=]+$)")
        annotations = body.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise ApiError(400, "annotations must be an object of strings")
        from ci_gate.sources.registry import parse_reference
        from ci_gate.sources.registry_auth import check_registry_allowed

        try:
            reference = parse_reference(pull_string)
            check_registry_allowed(reference.host, self.config.source)
        except CiGateError as error:
            raise ApiError(400, f"invalid pull_string {pull_string!r}: {error}") from None
        if kind == "digest":
            if not reference.digest:
                raise ApiError(400, "source.digest.pull_string must be HOST/REPO@sha256:<digest>")
            tag_text = spec.get("tag")
            if not isinstance(tag_text, str) or not tag_text:
                raise ApiError(400, "For a digest-based analysis, the tag property must also be populated")
            digest = reference.digest
            full_tag = normalise_tag(tag_text)
        else:
            full_tag = normalise_tag(pull_string)
            digest = self.resolve_digest(pull_string)
        if not DIGEST_PATTERN.match(digest):
            raise ApiError(400, f"only sha256 digests are supported, got {digest}")
        existing = self.store.get_image(digest)
        if existing is not None and dockerfile and not force:
            raise ApiError(400, "Cannot specify dockerfile for an image that already exists unless using "
                                "force=True for re-analysis")
        record, queued = self.store.add_image(digest, f"{reference.host}/{reference.repository}@{digest}", full_tag,
                                              {str(k): str(v) for k, v in annotations.items()}, dockerfile, force)
        if queued:
            self.pool.notify()
        return record

    def source_for(self, pull_string: str, store: Store | None = None) -> SourceOptions:
        """Pull options for one image: the server's, plus the registry entry added over the API to `store`
        (default: the service's) for its host (credentials, --insecure)."""
        from ci_gate.server.routes_registries import source_options_for

        return source_options_for(self.config.source, store or self.store, self.credentials, pull_string)

    def resolve_digest(self, pull_string: str) -> str:
        """The manifest digest a tag points at now (Anchore resolves it when the image is added), from
        the registry pool: never longer than its deadline, refused at once when it is saturated."""
        from ci_gate.sources.registry import parse_reference

        try:
            reference = parse_reference(pull_string)
        except CiGateError as error:
            raise ApiError(400, f"cannot fetch image digest/manifest from registry: {error}") from None
        try:
            return resolve_registry_digest(self.registry, reference, self.source_for(pull_string))
        except RegistryBusy:
            raise ApiError(503, "the server is busy with slow registries; retry the add later",
                           headers={"Retry-After": str(BUSY_RETRY_AFTER)}) from None
        except RegistryFailure as failure:
            LOG.info("cannot fetch the digest of %s: %s", pull_string[:200], failure.reason)
            raise ApiError(400, f"cannot fetch image digest/manifest from registry: {failure.public}") from None

    def image(self, digest: str) -> ImageRecord:
        if not DIGEST_PATTERN.match(digest):
            raise ApiError(400, f"image digest {digest!r} must match ^sha256:[a-fA-F0-9]{{64}}$")
        record = self.store.get_image(digest)
        if record is None:
            raise ApiError(404, f"image not found: {digest}")
        return record

    def analysed(self, digest: str) -> tuple[ImageRecord, Analysis]:
        record = self.image(digest)
        if record.analysis_status != ANALYZED:
            raise ApiError(404, f"image is not analyzed - analysis_status: {record.analysis_status}")
        key = (str(self.store.path), digest, record.analyzed_at)  # the same digest in two accounts: two entries
        with self._cache_lock:
            cached = self._analyses.get(key)
            if cached is not None:
                self._analyses.move_to_end(key)
                return record, cached
        document = self.store.analysis_document(digest)
        if document is None:
            raise ApiError(404, f"image is not analyzed - analysis_status: {record.analysis_status}")
        analysis = from_dict(Analysis, document)
        with self._cache_lock:
            self._analyses[key] = analysis
            while len(self._analyses) > 4:  # a big image's analysis is tens of MB in memory
                self._analyses.popitem(last=False)
        return record, analysis

    # --- policies -------------------------------------------------------------------------------

    def policy_row(self, policy_id: str | None) -> PolicyRow:
        if policy_id:
            row = self.store.get_policy(policy_id)
            if row is None:
                raise ApiError(404, f"policy not found: {policy_id}")
            return row
        row = self.store.active_policy()
        if row is None:
            raise ApiError(404, "user has no active policy to evaluate")
        return row

    def parsed_policy(self, row: PolicyRow) -> Policy:
        key = (str(self.store.path), row.policy_id, row.last_updated)
        with self._cache_lock:
            cached = self._policies.get(key)
        if cached is not None:
            return cached
        policy = validate_policy(row.document, row.policy_id)
        with self._cache_lock:
            self._policies[key] = policy
        return policy

    def delete_policy(self, policy_id: str) -> None:
        outcome = self.store.delete_policy(policy_id)
        if outcome == "missing":
            raise ApiError(404, f"policy not found: {policy_id}")
        if outcome == "active":
            raise ApiError(500, "cannot delete an active policy - activate a different policy then delete this one")

    # --- evaluation and vulnerabilities ------------------------------------------------------------

    def evaluate(self, digest: str, tag: str | None, policy_id: str | None) -> tuple[Any, Analysis, ImageRecord,
                                                                                     PolicyRow, str]:
        from ci_gate.backends.interface import BackendRequest
        from ci_gate.backends.local import LocalBackend

        record, analysis = self.analysed(digest)
        row = self.policy_row(policy_id)
        policy = self.parsed_policy(row)
        full_tag = normalise_tag(tag) if tag else (record.tags[0][0] if record.tags else "")
        if not full_tag:
            raise ApiError(400, "the tag query parameter is required")
        try:
            evaluation = LocalBackend().evaluate(policy, analysis, BackendRequest(
                image=f"registry:{record.pull_string}", tag=full_tag, vuln_db=self.config.vuln_db))
        except CiGateError as error:
            raise ApiError(500, f"policy evaluation failed: {error}") from None
        evaluation = replace(evaluation, image_digest=record.digest, policy_id=row.policy_id, backend="serve",
                             warnings=tuple(self.public_text(w) for w in evaluation.warnings))
        return evaluation, analysis, record, row, full_tag

    def vulnerabilities(self, digest: str, vulnerability_type: str, v2: bool) -> list[dict[str, Any]]:
        from ci_gate.vulns.provider import make_provider

        if vulnerability_type not in VULNERABILITY_TYPES:
            raise ApiError(400, f"vulnerability type must be one of {', '.join(VULNERABILITY_TYPES)}, "
                                f"not {vulnerability_type!r}")
        _, analysis = self.analysed(digest)
        matches = list(make_provider(analysis, self.config.vuln_db).matches())
        items = []
        for match in matches:
            os_type = shapes.is_os_type(shapes.anchore_package_type(match.package))
            if (vulnerability_type == "os" and not os_type) or (vulnerability_type == "non-os" and os_type):
                continue
            items.append(shapes.vulnerability_item(match, match.package.origin == "base", v2))
        return items

    def content_types(self, digest: str) -> list[str]:
        _, analysis = self.analysed(digest)
        extra = sorted({shapes.content_type_of(p) for p in analysis.packages} - set(ANCHORE_CONTENT_TYPES))
        return [*ANCHORE_CONTENT_TYPES, *extra]

    def content(self, digest: str, content_type: str, v2: bool) -> list[dict[str, Any]]:
        if content_type not in self.content_types(digest):
            raise ApiError(404, f"content type {content_type!r} not available; see GET /images/{digest}/content")
        _, analysis = self.analysed(digest)
        if content_type == "files":
            return [{"filename": f.path, "gid": f.gid, "linkdest": f.link_target or None, "mode": f"{f.mode:05o}",
                     "sha256": None, "size": f.size, "type": f.kind, "uid": f.uid} for f in analysis.files]
        return [shapes.content_item(p, v2) for p in analysis.packages if shapes.content_type_of(p) == content_type]

    def status(self) -> dict[str, Any]:
        return {
            "available": True, "busy": self.pool.busy > 0, "up": True, "message": "all good",
            "version": __version__, "db_version": "1",
            "detail": {
                "workers": self.config.workers, "busy_workers": self.pool.busy,
                "images_by_status": self.store.status_counts(),
                "analyses_started_since_start": self.store.counters.analyses_started,
                "analyses_failed_since_start": self.store.counters.analyses_failed,
                "analyses_by_digest": self.store.analysis_counts(),
                "started_at": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def public_text(self, text: str) -> str:
        """`text` without the server's file system paths (the vulnerability store's location is the
        operator's business, not every API caller's)."""
        from ci_gate.vulns.store import resolve_path

        store_path = resolve_path(self.config.vuln_db)
        for path in (str(store_path), str(store_path.parent)):
            text = text.replace(path, "the server's vulnerability store")
        return text

    def add_api_key(self, body: Any, principal: Principal) -> dict[str, Any]:
        require_password(principal)
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a UserApiKey object: {\"name\": \"ci\", "
                                "\"expires_at\": \"2027-01-01T00:00:00Z\"}")
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 1024:
            raise ApiError(400, "description must be a string of at most 1024 characters")
        try:
            name = keys.key_name(body.get("name"))
            expires_at = keys.expiry(body.get("expires_at"), datetime.now(timezone.utc))
        except keys.KeyRequestError as error:
            raise ApiError(400, str(error)) from None
        value = secrets.token_urlsafe(32)
        row = self.store.add_api_key(name, description, value, expires_at, principal.account)
        if row is None:
            raise ApiError(409, f"an API key named {name!r} already exists")
        return shapes.api_key(row, value)


def require_password(principal: Principal | None) -> None:
    """API keys are managed by the user with the password; a key may not mint, change or delete keys."""
    if principal is not None and principal.api_key is not None:
        raise ApiError(403, "Access Denied: API keys cannot create, change or delete API keys; authenticate "
                            "with the user's password", {"permission_required": "createApiKey"})


def seed_policies(store: Store) -> None:
    """The built-in packs, `builtin:default` active, in a store that has no policy yet."""
    if store.list_policies():
        return
    for name in BUILTIN_POLICIES:
        policy = load_policy(f"builtin:{name}")
        store.add_policy(policy.id, policy.name, policy.description, policy.document, source="builtin",
                         active=name == "default")


def validate_policy(document: Mapping[str, Any], name: str) -> Policy:
    """The parsed policy, or a 400 listing every problem (Anchore's validation failure body)."""
    policy, problems = check_text(json.dumps(document), f"{name}.json", strict=False)
    errors = [p for p in problems if p.severity == "error"]
    if policy is None or errors:
        details = [{"message": p.message, "severity": p.severity, "line": p.line, "column": p.column}
                   for p in problems]
        first = errors[0].message if errors else "the document is not a policy"
        raise ApiError(400, f"Policy failed validation: {first}", {"validation_details": details})
    return policy


# --- HTTP ------------------------------------------------------------------------------------------

Handler = Callable[["Call"], Any]


@dataclass(frozen=True)
class Call:
    """One request, read and authenticated, as the handlers see it."""

    service: Service
    """The server's behaviour."""
    path_params: Mapping[str, str]
    """Path parameters by name."""
    query: Mapping[str, str]
    """Query parameters (last value wins)."""
    body: bytes
    """The raw request body."""
    content_type: str
    """The request's Content-Type."""
    v1: bool
    """True under /v1: v1 shapes."""
    principal: Principal | None = None
    """Who is calling (None on public routes)."""

    def json(self) -> Any:
        if self.content_type and "json" not in self.content_type and "yaml" not in self.content_type:
            raise ApiError(415, f"unsupported media type {self.content_type}; send application/json")
        try:
            document = json.loads(self.body or b"null")
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON") from None
        problem = json_problem(document)
        if problem:
            raise ApiError(400, problem)
        return document

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.query.get(name)
        return default if value is None else value.lower() in ("true", "1", "yes")


def _error(status: int, message: str, v1: bool, detail: Mapping[str, Any] | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    message = message.encode("utf-8", "replace").decode("utf-8")  # a path or value may carry a lone surrogate
    body = shapes.error_v1(status, message, detail) if v1 else shapes.error_v2(status, message, detail)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _dispatch(service: Service, handler: Handler, principal: Principal | None, request: Request,
              body: bytes) -> Response:
    v1 = request.url.path.startswith("/v1")
    token = CURRENT_ACCOUNT.set(principal.account if principal is not None else ACCOUNT)
    try:
        service.store_for(CURRENT_ACCOUNT.get())
        call = Call(service=service, path_params=request.path_params, query=dict(request.query_params), body=body,
                    content_type=request.headers.get("content-type", "").split(";")[0].strip().lower(), v1=v1,
                    principal=principal)
        result = handler(call)
        return result if isinstance(result, Response) else JSONResponse(result)
    except ApiError as error:
        return _error(error.status, error.message, v1, error.detail, error.headers)
    except Exception as error:  # a bug answers 500 in the documented shape, and is logged with its traceback
        LOG.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(error).__name__}", v1)
    finally:
        CURRENT_ACCOUNT.reset(token)


def _route(path: str, handler: Handler, methods: list[str], service: Service, public: bool = False,
           inline: bool = False, registry: bool = False) -> Route:
    """`inline` handlers only read one small row, so they run on the event loop (status polls are
    the hot path); the others evaluate a policy or wait on a registry, so they run in threads.
    `registry` handlers (adds, which resolve a tag) run under a thread limit of their own, so a
    registry that hangs never holds the threads that answer everything else."""
    async def endpoint(request: Request) -> Response:
        v1 = request.url.path.startswith("/v1")
        principal: Principal | None = None
        body = b""
        if not public:  # who is calling is settled on the headers alone, before a byte of the body is read
            try:
                client = request.client.host if request.client else "unknown"
                principal = service.gatekeeper.admit(client, request.headers)
            except Throttled as throttled:
                who = "client address" if throttled.scope == "client" else "user"
                return _error(429, f"Too many failed logins for this {who}; retry after {throttled.retry_after} s",
                              v1, {"retry_after_seconds": throttled.retry_after},
                              {"Retry-After": str(throttled.retry_after)})
            except AuthFailure as failure:
                headers = {"WWW-Authenticate": 'Basic realm="ci-gate"'} if failure.status == 401 else None
                return _error(failure.status, failure.message, v1, failure.detail, headers)
            try:
                body = await read_body(request, MAX_BODY_BYTES, service.config.request_timeout)
            except BodyError as error:
                return _error(error.status, error.message, v1, headers={"Connection": "close"})
        if inline:
            return _dispatch(service, handler, principal, request, body)
        if registry:
            if service.registry_callers is None:  # created on the event loop, at first use
                service.registry_callers = anyio.CapacityLimiter(REGISTRY_CALLERS)
            return await anyio.to_thread.run_sync(_dispatch, service, handler, principal, request, body,
                                                  limiter=service.registry_callers)
        return await run_in_threadpool(_dispatch, service, handler, principal, request, body)

    return Route(path, endpoint, methods=methods)


def _post_image(call: Call) -> Any:
    from ci_gate.server.routes_events import subscribe_added_image

    record = call.service.add_image(call.json(), call.flag("force"))
    subscribe_added_image(call)
    return [shapes.image_v1(record)] if call.v1 else shapes.image_v2(record)


def _get_image(call: Call) -> Any:
    record = call.service.image(call.path_params["digest"])
    return [shapes.image_v1(record)] if call.v1 else shapes.image_v2(record)


def _check(call: Call) -> Any:
    from ci_gate.server.records import record_evaluation

    evaluation, analysis, record, row, tag = call.service.evaluate(
        call.path_params["digest"], call.query.get("tag"), call.query.get("policyId" if call.v1 else "policy_id"))
    record_evaluation(call.service.store, tag, row.policy_id, record.digest,
                      "fail" if evaluation.final_action.lower() == "stop" else "pass")
    detail = call.flag("detail", True)
    if call.v1:
        return shapes.check_v1(evaluation, analysis, record, row, tag, detail)
    from ci_gate.reports.evaluation_json import render_evaluation_json

    return shapes.check_v2(render_evaluation_json(evaluation, analysis), record, row, detail)


def _vulnerability_types(call: Call) -> Any:
    call.service.image(call.path_params["digest"])
    return list(VULNERABILITY_TYPES)


def _vulnerabilities(call: Call) -> Any:
    digest = call.path_params["digest"]
    vulnerability_type = call.path_params.get("vtype") or call.query.get("type") or "all"
    items = call.service.vulnerabilities(digest, vulnerability_type, not call.v1)
    if call.v1:
        return shapes.vulnerabilities_v1(digest, vulnerability_type, items)
    return shapes.vulnerabilities_v2(digest, vulnerability_type, items)


def _content_types(call: Call) -> Any:
    return call.service.content_types(call.path_params["digest"])


def _content(call: Call) -> Any:
    digest, content_type = call.path_params["digest"], call.path_params["ctype"]
    items = call.service.content(digest, content_type, not call.v1)
    key = "imageDigest" if call.v1 else "image_digest"
    return {key: digest, "content_type": content_type, "content": items}


def _delete_policy(call: Call) -> Any:
    call.service.delete_policy(call.path_params["policy_id"])
    return Response(status_code=200)


def _account(call: Call) -> str:
    return call.principal.account if call.principal is not None else ACCOUNT


def _list_api_keys(call: Call) -> Any:
    return [shapes.api_key(row) for row in call.service.store.list_api_keys(_account(call))]


def _post_api_key(call: Call) -> Any:
    assert call.principal is not None
    return call.service.add_api_key(call.json(), call.principal)


def _get_api_key(call: Call) -> Any:
    row = call.service.store.get_api_key(call.path_params["key_name"], _account(call))
    if row is None:
        raise ApiError(404, "API key not found")
    return shapes.api_key(row)


def _patch_api_key(call: Call) -> Any:
    """PATCH {"status": "revoked"}: the key stops working at once and stays listed as revoked."""
    require_password(call.principal)
    body = call.json()
    if not isinstance(body, dict) or body.get("status") != "revoked" or set(body) - {"status"}:
        raise ApiError(400, "a key can only be revoked: send {\"status\": \"revoked\"}")
    row = call.service.store.revoke_api_key(call.path_params["key_name"], _account(call))
    if row is None:
        raise ApiError(404, "API key not found")
    return shapes.api_key(row)


def _delete_api_key(call: Call) -> Any:
    require_password(call.principal)
    if not call.service.store.delete_api_key(call.path_params["key_name"], _account(call)):
        raise ApiError(404, "API key not found")
    return Response(status_code=204)


def _require_admin(call: Call) -> None:
    if call.principal is None or call.principal.username != ADMIN_USER or call.principal.api_key is not None:
        raise ApiError(403, "Access Denied: only the admin user (with its password) manages accounts",
                       {"permission_required": "createAccount"})


def _account_body(name: str, email: str, created_at: str) -> dict[str, Any]:
    """Anchore Enterprise's `Account`."""
    return {"name": name, "email": email, "state": "enabled", "type": "admin" if name == ACCOUNT else "user",
            "created_at": created_at, "last_updated": created_at}


def _list_accounts(call: Call) -> Any:
    _require_admin(call)
    started = call.service.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_account_body(ACCOUNT, "", started)] + [_account_body(a.name, a.email, a.created_at)
                                                     for a in call.service.accounts.accounts()]


def _post_account(call: Call) -> Any:
    _require_admin(call)
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be an Account object: {\"name\": \"team-b\"}")
    try:
        row = call.service.accounts.create_account(body.get("name"), body.get("email") or "")
    except AccountError as error:
        raise ApiError(error.status, str(error)) from None
    call.service.store_for(row.name)
    return _account_body(row.name, row.email, row.created_at)


def _post_account_user(call: Call) -> Any:
    _require_admin(call)
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a user: {\"username\": \"bob\", \"password\": \"...\"}")
    try:
        username = call.service.accounts.add_user(call.path_params["account_name"], body.get("username"),
                                                  body.get("password"))
    except AccountError as error:
        raise ApiError(error.status, str(error)) from None
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"username": username, "type": "native", "source": None, "created_at": now, "last_updated": now}


def _ping(call: Call) -> Any:
    """v1's ping: the API version prefix as a JSON string."""
    return "v1" if call.v1 else "v2"


def _health(call: Call) -> Any:
    return Response(status_code=200)


def _status(call: Call) -> Any:
    return call.service.status()


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI application; workers start and stop with its lifespan."""
    from ci_gate.server import routes_events, routes_images, routes_policies, routes_registries, routes_system

    service = Service(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    routes = [
        _route("/health", _health, ["GET"], service, public=True, inline=True),
        _route("/version", routes_system.version_v2, ["GET"], service, public=True),
        _route("/status", _status, ["GET"], service),
        _route("/v2/user/api-keys", _list_api_keys, ["GET"], service),
        _route("/v2/user/api-keys", _post_api_key, ["POST"], service),
        _route("/v2/user/api-keys/{key_name}", _get_api_key, ["GET"], service),
        _route("/v2/user/api-keys/{key_name}", _patch_api_key, ["PATCH"], service),
        _route("/v2/user/api-keys/{key_name}", _delete_api_key, ["DELETE"], service),
        _route("/v2/accounts", _list_accounts, ["GET"], service),
        _route("/v2/accounts", _post_account, ["POST"], service),
        _route("/v2/accounts/{account_name}/users", _post_account_user, ["POST"], service),
    ]
    for version in ("v1", "v2"):
        prefix = f"/{version}"
        routes += [
            _route(f"{prefix}/", _ping, ["GET"], service, public=True),
            _route(f"{prefix}/version", routes_system.version_v1 if version == "v1" else routes_system.version_v2,
                   ["GET"], service),
            _route(f"{prefix}/status", _status, ["GET"], service),
            _route(f"{prefix}/images", _post_image, ["POST"], service, registry=True),
            _route(f"{prefix}/images", routes_images.list_images, ["GET"], service),
            _route(f"{prefix}/images/{{digest}}", _get_image, ["GET"], service, inline=True),
            _route(f"{prefix}/images/{{digest}}", routes_images.delete_image, ["DELETE"], service),
            _route(f"{prefix}/images/{{digest}}/check", _check, ["GET"], service),
            _route(f"{prefix}/images/{{digest}}/vuln", _vulnerability_types, ["GET"], service),
            _route(f"{prefix}/images/{{digest}}/vuln/{{vtype}}", _vulnerabilities, ["GET"], service),
            _route(f"{prefix}/images/{{digest}}/content", _content_types, ["GET"], service),
            _route(f"{prefix}/images/{{digest}}/content/{{ctype}}", _content, ["GET"], service),
            _route(f"{prefix}/policies", routes_policies.list_policies, ["GET"], service),
            _route(f"{prefix}/policies", routes_policies.add_policy, ["POST"], service),
            _route(f"{prefix}/policies/{{policy_id}}", routes_policies.get_policy, ["GET"], service),
            _route(f"{prefix}/policies/{{policy_id}}", routes_policies.update_policy, ["PUT"], service),
            _route(f"{prefix}/policies/{{policy_id}}", _delete_policy, ["DELETE"], service),
        ]
    routes.append(_route("/v2/images/{digest}/vulnerabilities", _vulnerabilities, ["GET"], service))
    routes += routes_images.routes(service, _route, {
        "get": _get_image, "check": _check, "vulnerability_types": _vulnerability_types,
        "vulnerabilities": _vulnerabilities, "content_types": _content_types, "content": _content})
    routes += routes_policies.routes(service, _route) + routes_registries.routes(service, _route)
    routes += routes_events.routes(service, _route) + routes_system.routes(service, _route, routes)
    routes += admission.routes(service)  # public, TLS-only: the API server calls webhooks without credentials
    routes += __import__("ci_gate.server.ui", fromlist=["routes"]).routes(service, _route)  # the dashboard, /ui/

    async def http_error(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"method {request.method} not allowed on {request.url.path}"}.get(status, str(error))
        return _error(status, message, request.url.path.startswith("/v1"))

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app


def serve(config: ServerConfig, host: str, port: int) -> None:
    """Run until interrupted."""
    import socket

    import uvicorn

    try:  # uvicorn would log a bind failure and exit 1; say it in one line with exit 2 instead
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port "
                         "or --host") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    tls = config.tls_cert is not None
    LOG.info("ci-gate serve %s on %s://%s:%d (data dir %s, %d workers)", __version__, "https" if tls else "http",
             host, port, config.data_dir, config.workers)
    # Idle keep-alive connections close after 5 s (uvicorn); unfinished request headers after
    # request_timeout (GuardedH11Protocol); past 512 connections new requests get 503.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                http=guarded_protocol(config.request_timeout), timeout_keep_alive=5, limit_concurrency=512,
                h11_max_incomplete_event_size=64 * 1024,
                ssl_certfile=str(config.tls_cert) if tls else None, ssl_keyfile=str(config.tls_key) if tls else None)
