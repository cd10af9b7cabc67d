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

__all__ = ["Backend", "BackendError", "BackendRequest", "BackendResult"]


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
