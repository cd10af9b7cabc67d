"""What a backend does: turn an image and a policy into an `Analysis` and an `Evaluation`.

`local` analyses and evaluates in-process; `anchore` (another module) asks an Anchore
Enterprise server. Both return the same model, so reports and CI adapters never know which ran.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ci_gate.errors import BackendError
from ci_gate.model import Analysis, Evaluation
from ci_gate.sources.interface import SourceOptions

__all__ = ["AnchoreOptions", "Backend", "BackendError", "BackendRequest", "BackendResult"]


@dataclass(frozen=True)
class AnchoreOptions:
    """How to reach an Anchore Enterprise (or anchore-engine) server; unset fields come from the environment."""

    url: str | None = None
    """The API URL (`https://anchore.example.com`, or with `/v2` or `/v1`); None = $ANCHORE_URL / $ANCHORECTL_URL."""
    username: str | None = None
    """The user, or `_api_key` for an API key; None = $ANCHORE_USER / $ANCHORECTL_USERNAME."""
    password: str | None = field(default=None, repr=False)
    """The password or API key value; None = $ANCHORE_PASS / $ANCHORECTL_PASSWORD. Never shown."""
    account: str | None = None
    """Sent as `x-anchore-account` (act in another account; admin only); None = $ANCHORECTL_ACCOUNT or none."""
    policy_id: str | None = None
    """The server policy to evaluate against; None = the account's active policy."""
    timeout: float | None = None
    """Seconds the whole gate may wait for the server's analysis; None = the backend's default."""
    poll_interval: float | None = None
    """Longest pause between two analysis-status polls (seconds); None = the backend's default."""
    force: bool = False
    """Re-analyse even when the server has already analysed the digest."""


@dataclass(frozen=True)
class BackendRequest:
    """One image to decide on."""

    image: str
    """The image reference as the user gave it (SCHEME:LOCATION or a path/reference)."""
    policy: str = "builtin:default"
    """A policy file path or builtin:NAME."""
    tag: str | None = None
    """The tag mappings match on; None = the image's own tag."""
    dockerfile: Path | None = None
    base_image: str | None = None
    vuln_db: Path | None = None
    source: SourceOptions = field(default_factory=SourceOptions)
    use_cache: bool = True
    now: datetime | None = None
    """Evaluation time (tests pin it); None = now."""
    vex: tuple[Path, ...] = ()
    """VEX documents that suppress vulnerability matches."""
    secret_rules: Path | None = None
    anchore: AnchoreOptions | None = None
    """Connection settings for the anchore backend (ignored by the local one)."""


@dataclass(frozen=True)
class BackendResult:
    analysis: Analysis
    evaluation: Evaluation


class Backend(abc.ABC):
    """A way to get a policy decision for an image."""

    name: str

    @abc.abstractmethod
    def run(self, request: BackendRequest, progress: bool = False) -> BackendResult:
        """Analyse and evaluate; raise a CiGateError subclass (BackendError, PolicyError, ...) on failure."""
