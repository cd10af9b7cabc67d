"""How `ci-gate serve` runs: the settings its flags and environment give (docs/serve.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ci_gate.database_url import DEFAULT_DATABASE, DatabaseUrl
from ci_gate.server.limits import DEFAULT_REQUEST_TIMEOUT
from ci_gate.server.registry_work import DEFAULT_DEADLINE
from ci_gate.server.store import DEFAULT_LEASE_SECONDS
from ci_gate.sources.interface import SourceOptions


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
    watch_interval: float = 3600.0
    """Seconds between re-resolving watched tags (docs/notifications.md)."""
    notifications_config: Path | None = None
    """A YAML file with anchore-engine's `webhooks` configuration; None = only endpoints added over the API."""
    allowed_notify_hosts: tuple[str, ...] = ()
    """HOST[:PORT] entries (or `*`) API-configured notification endpoints may reach (ci_gate.notify.hosts)."""
    database: DatabaseUrl = DEFAULT_DATABASE
    """Where the server's state lives: SQLite in data_dir, or PostgreSQL shared with other replicas."""
    role: str = "all"
    """api (HTTP only), worker (analysis, watchers, deliveries; /health only) or all."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a claimed analysis lasts without a heartbeat before another replica takes it over."""

    @property
    def runs_work(self) -> bool:
        """Whether this process analyses, watches and delivers (roles worker and all)."""
        return self.role != "api"

    @property
    def serves_api(self) -> bool:
        return self.role != "worker"
