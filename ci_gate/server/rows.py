"""The serve database's schema and the rows `Store` returns (frozen dataclasses), with the analysis
statuses and the time format they use."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

NOT_ANALYZED = "not_analyzed"
ANALYZING = "analyzing"
ANALYZED = "analyzed"
ANALYSIS_FAILED = "analysis_failed"

ACCOUNT = "admin"
"""The only account this server has (Anchore's default admin account)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    analysis_status TEXT NOT NULL,
    status_history TEXT NOT NULL DEFAULT '[]',
    failure_reason TEXT NOT NULL DEFAULT '',
    pull_string TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    annotations TEXT NOT NULL DEFAULT '{}',
    dockerfile TEXT,
    created_at TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    analyzed_at TEXT,
    analysis_count INTEGER NOT NULL DEFAULT 0,
    record_version INTEGER NOT NULL DEFAULT 1,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS images_status ON images (analysis_status, created_at);
CREATE TABLE IF NOT EXISTS analyses (
    digest TEXT PRIMARY KEY,
    document BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    policy_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 0,
    policy_source TEXT NOT NULL DEFAULT 'local',
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registries (
    registry TEXT NOT NULL,
    account TEXT NOT NULL,
    registry_name TEXT NOT NULL,
    registry_type TEXT NOT NULL DEFAULT 'docker_v2',
    registry_user TEXT NOT NULL DEFAULT '',
    secret BLOB NOT NULL,
    registry_verify INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    PRIMARY KEY (account, registry)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    subscription_key TEXT NOT NULL,
    subscription_type TEXT NOT NULL,
    subscription_value TEXT,
    active INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    generated_uuid TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    type TEXT NOT NULL,
    notification_type TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    timestamp TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_time ON events (account, timestamp);
CREATE TABLE IF NOT EXISTS evaluation_status (
    account TEXT NOT NULL,
    tag TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (account, tag, policy_id)
);
CREATE TABLE IF NOT EXISTS tag_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_history_tag ON tag_history (tag, seq);
CREATE TABLE IF NOT EXISTS vuln_status (
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    stamp TEXT NOT NULL,
    matches TEXT NOT NULL,
    PRIMARY KEY (tag, digest)
);
CREATE TABLE IF NOT EXISTS evaluation_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,
    evaluated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluation_history_tag ON evaluation_history (tag, policy_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    event_uuid TEXT PRIMARY KEY,
    notification_type TEXT NOT NULL,
    subscription_key TEXT NOT NULL,
    event TEXT NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    idempotency_key TEXT PRIMARY KEY,
    event_uuid TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    endpoint_kind TEXT NOT NULL,
    notification_type TEXT NOT NULL,
    state TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_attempt REAL NOT NULL,
    last_attempt REAL,
    last_status INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    delivered_at REAL,
    external_ref TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt);
CREATE TABLE IF NOT EXISTS notification_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    settings TEXT NOT NULL,
    sealed BLOB,
    created_at TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS serve_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS policies_one_active ON policies (account) WHERE active = 1;
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    value_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active'
);
"""


def now_text() -> str:
    """UTC now as Anchore writes times: RFC 3339 with a Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_hash(value: str) -> str:
    """API keys are kept only as their SHA-256, so the data dir never holds a usable secret."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class StatusChange:
    """One step of an image's analysis status (Anchore's analysis_status_detail item)."""

    from_status: str
    """The status before the change (empty for a new record)."""
    to_status: str
    """The status after the change."""
    timestamp: str
    """When it changed (RFC 3339, UTC)."""
    source: str
    """What changed it: api (an add), worker, or startup (resumed after a restart)."""


@dataclass(frozen=True)
class ImageRecord:
    """One image the server knows, by manifest digest."""

    digest: str
    """sha256:… of the manifest (Anchore's image_digest)."""
    account: str
    """The owning account (always admin here)."""
    analysis_status: str
    """not_analyzed, analyzing, analyzed or analysis_failed."""
    status_history: tuple[StatusChange, ...]
    """Every status change, oldest first."""
    failure_reason: str
    """Why the last analysis failed (one line); empty otherwise."""
    pull_string: str
    """HOST/REPO@DIGEST the worker pulls."""
    tags: tuple[tuple[str, str], ...]
    """(full tag, when it was first seen) for every tag submitted with this digest."""
    annotations: Mapping[str, str]
    """Annotations from the add request(s), merged."""
    dockerfile: str | None
    """The Dockerfile sent with the add (base64 as received), or None."""
    created_at: str
    """When the record was created."""
    last_updated: str
    """When the record last changed."""
    analyzed_at: str | None
    """When the analysis finished, if it did."""
    analysis_count: int
    """How many analyses were started for this digest (the 'analysed once' guarantee is visible here)."""
    record_version: int = 1
    """Bumped on each change."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """A summary of the analysis (image id, arch, distro, size, layer count) so status polls never load it."""
    claimed_by: str | None = None
    """While `analyzing`: the claim (replica and worker) that holds the image's lease."""


@dataclass(frozen=True)
class PolicyRow:
    """A stored policy document."""

    policy_id: str
    """The policy's id (the document's `id`)."""
    account: str
    """The owning account."""
    name: str
    """The policy's name."""
    description: str
    """The policy's description."""
    active: bool
    """Whether this is the account's active policy (exactly one is)."""
    policy_source: str
    """Where it came from: local (added over the API) or builtin."""
    document: Mapping[str, Any]
    """The v2 policy document."""
    created_at: str
    """When it was added."""
    last_updated: str
    """When it last changed."""

    @property
    def content_digest(self) -> str:
        """A digest of the document: the key for caches of what it evaluates to. `last_updated` has
        one-second resolution, so a policy replaced twice in one second keeps its time but not this."""
        return hashlib.sha256(json.dumps(self.document, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key (never its value, only its hash is stored)."""

    name: str
    """The key's name (unique)."""
    account: str
    """The account the key acts as."""
    description: str
    """Free text."""
    expires_at: str
    """RFC 3339 expiry."""
    created_at: str
    """When it was made."""
    updated_at: str
    """When it last changed."""
    status: str
    """active, expired or revoked."""


@dataclass
class Counters:
    """In-memory figures since start, for /status detail."""

    analyses_started: int = 0
    """Analyses begun by this process."""
    analyses_failed: int = 0
    """Analyses that ended analysis_failed in this process."""
    by_digest: dict[str, int] = field(default_factory=dict)
    """Analyses started per digest in this process."""


