"""The server's behaviour, independent of HTTP: `Service` (its configuration is `config.ServerConfig`).

Routes (`app.py`, `routes_*.py`) parse, authenticate and shape; `Service` does the work against the
store, the worker pool and the policy engine.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ci_gate import __version__
from ci_gate.database import database_errors
from ci_gate.database_url import redact_url
from ci_gate.ecosystems import ANCHORE_CONTENT_TYPES
from ci_gate.errors import CiGateError, UsageError
from ci_gate.model import Analysis, from_dict
from ci_gate.policy.documents import check_text, load_policy
from ci_gate.policy.gates.tag_drift import comparing_to
from ci_gate.policy.model import Policy
from ci_gate.server import shapes
from ci_gate.server.accounts import AccountDirectory
from ci_gate.server.auth import Gatekeeper
from ci_gate.server.config import ServerConfig
from ci_gate.server.registry_work import BUSY_RETRY_AFTER, RegistryBusy, RegistryFailure, RegistryPool
from ci_gate.server.registry_work import resolve_digest as resolve_registry_digest
from ci_gate.server.startup import permission_warnings
from ci_gate.server.status_error import StatusError
from ci_gate.server.store import ACCOUNT, ANALYZED, ApiKeyRow, ImageRecord, PolicyRow, Store
from ci_gate.server.worker import WorkerOptions, WorkerPool
from ci_gate.sources.interface import SourceOptions

LOG = logging.getLogger("ci_gate.server")

ACCOUNT_REFRESH_SECONDS = 5.0
"""How often the account list is read again (accounts created through another replica)."""
POLICY_CACHE_SIZE = 64
"""Parsed policy documents kept per process (an account usually has a handful)."""

CURRENT_ACCOUNT: ContextVar[str] = ContextVar("ci_gate_serve_account", default=ACCOUNT)
"""The account the request being handled acts in (set per request by _dispatch)."""

DIGEST_PATTERN = re.compile(r"^sha256:[a-fA-F0-9]{64}$")
BASE64_PATTERN = re.compile(r"^[a-zA-Z0-9+/=]+$")
VULNERABILITY_TYPES = ("os", "non-os", "all")
BUILTIN_POLICIES = ("default", "cis", "dod")


class ApiError(StatusError):
    """An error answer: status, one-line message, optional detail object and response headers."""

    def __init__(self, status: int, message: str, detail: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message, detail)
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
        self._accounts_seen = time.monotonic()
        self._started = False
        try:
            admin_store = self._open_store(ACCOUNT, config.data_dir)
            self.accounts = AccountDirectory(config.data_dir, config.database)
            for account in self.accounts.accounts():
                self._open_store(account.name, self.accounts.store_dir(account.name))
        except database_errors() as error:
            where = (f"the data dir {config.data_dir}" if config.database.url == "" else
                     f"the database {config.database.redacted}")
            fix = "pass a writable --data-dir" if config.database.url == "" else "check --database"
            reason = " ".join(redact_url(str(error)).split())
            raise UsageError(f"cannot open {where}: {reason}; {fix}") from None
        for warning in permission_warnings(config.data_dir, admin_store.path):
            LOG.warning("%s", warning)
        self.gatekeeper = Gatekeeper(admin_store, config.admin_password, directory=self.accounts,
                                     find_key=self.find_key)
        from ci_gate.server.records import CredentialBox

        self.credentials = CredentialBox(config.admin_password)
        from ci_gate.notify.dispatcher import Dispatcher
        from ci_gate.notify.endpoints import load_webhooks_config

        configured = load_webhooks_config(config.notifications_config) if config.notifications_config else []
        self.dispatcher = Dispatcher(self.stores, self.credentials, configured,
                                     allowed_hosts=config.allowed_notify_hosts)
        self.background: list[Any] = []
        """More threads started and stopped with the service (`start()`/`stop()`): the tag and vuln watchers."""
        self.registry = RegistryPool(deadline=config.registry_deadline)
        self.registry_callers: anyio.CapacityLimiter | None = None
        self._analyses: OrderedDict[tuple[str, str, str | None], Analysis] = OrderedDict()
        self._policies: OrderedDict[tuple[str, str, str], Policy] = OrderedDict()
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

    def stores(self) -> dict[str, Store]:
        """Every account's store, by account name: accounts another replica created since the last look
        (at most every ACCOUNT_REFRESH_SECONDS) are opened, so their queues get workers here too."""
        if time.monotonic() - self._accounts_seen > ACCOUNT_REFRESH_SECONDS:
            self._accounts_seen = time.monotonic()
            self._open_all()
        return dict(self._stores)

    def _open_all(self) -> None:
        for account in self.accounts.accounts():
            if account.name not in self._stores:
                self._open_store(account.name, self.accounts.store_dir(account.name))

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
            store = Store(directory, self.config.database, account, self.config.lease_seconds)
            pool = WorkerPool(store, WorkerOptions(source=self.config.source, scratch_dir=directory / "scratch",
                                                   source_for=functools.partial(self.source_for, store=store)),
                              self.config.workers)
            self._stores[account] = store
            self._pools[account] = pool
            if self._started:
                seed_policies(store)
                if self.config.runs_work:
                    pool.start()
            return store

    def find_key(self, value: str) -> ApiKeyRow | None:
        """The active API key with this value, in whichever account's store holds it."""
        for attempt in (1, 2):
            for store in list(self._stores.values()):
                key = store.api_key_for_value(value)
                if key is not None:
                    return key
            if attempt == 1:
                self._open_all()  # a key of an account another replica created since this one started
        return None

    def start(self) -> None:
        with self._accounts_lock:
            self._started = True
            for account, store in self._stores.items():
                seed_policies(store)
                if self.config.runs_work:
                    self._pools[account].start()
        if not self.config.runs_work:  # role api: another process analyses, watches and delivers
            return
        self.dispatcher.start()
        admin_store = self._stores[ACCOUNT]
        for thread in self.background:  # one replica at a time runs each watcher
            thread.lease = functools.partial(admin_store.hold_lease, f"watcher:{thread.thread_name}")
            thread.release = functools.partial(admin_store.release_lease, f"watcher:{thread.thread_name}")
            thread.start()

    def stop(self) -> None:
        for thread in self.background:
            thread.stop()
        for name in ("dispatcher",):
            if getattr(self, name, None) is not None:
                getattr(self, name).stop()
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
        from ci_gate.server.records import source_options_for

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
        # The same digest in two accounts: two entries. `analyzed_at` has one-second resolution, so a forced
        # re-analysis finishing within the second would keep the old entry: the analysis count tells them apart.
        key = (str(self.store.path), digest, f"{record.analyzed_at}#{record.analysis_count}")
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
        key = (str(self.store.path), row.policy_id, row.content_digest)
        with self._cache_lock:
            cached = self._policies.get(key)
            if cached is not None:
                self._policies.move_to_end(key)
                return cached
        policy = validate_policy(row.document, row.policy_id)
        with self._cache_lock:
            self._policies[key] = policy
            while len(self._policies) > POLICY_CACHE_SIZE:
                self._policies.popitem(last=False)
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
            with comparing_to(*self._previous_image(policy, full_tag, record.digest)):
                evaluation = LocalBackend().evaluate(policy, analysis, BackendRequest(
                    image=f"registry:{record.pull_string}", tag=full_tag, vuln_db=self.config.vuln_db))
        except CiGateError as error:
            raise ApiError(500, f"policy evaluation failed: {error}") from None
        evaluation = replace(evaluation, image_digest=record.digest, policy_id=row.policy_id, backend="serve",
                             warnings=tuple(self.public_text(w) for w in evaluation.warnings))
        return evaluation, analysis, record, row, full_tag

    def _previous_image(self, policy: Policy, full_tag: str, digest: str) -> tuple[Analysis | None, str]:
        """The analysed image `full_tag` pointed to before `digest` (tag history), for the tag_drift gate;
        (None, "") when the policy has no tag_drift rule or the tag has no earlier analysed image."""
        if not any(rule.gate.lower() == "tag_drift" for rule_set in policy.rule_sets for rule in rule_set.rules):
            return None, ""
        history = [r.digest for r in self.store.images_for_tag(full_tag, history=True)]
        earlier = history[history.index(digest) + 1:] if digest in history else history
        for candidate in earlier:
            if candidate == digest:
                continue
            try:
                _, previous = self.analysed(candidate)
            except ApiError:  # not analysed (yet, or it failed): look further back
                continue
            return previous, f"{full_tag}@{candidate}"
        return None, ""

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
                "workers": self.config.workers if self.config.runs_work else 0, "busy_workers": self.pool.busy,
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

