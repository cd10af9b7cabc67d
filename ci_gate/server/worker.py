"""The analysis workers: threads that take queued images from the store and analyse them.

Each worker claims one `not_analyzed` image at a time (the store makes the claim atomic and gives
it a lease), pulls it from the registry named in its pull string by digest, renews the lease while it
analyses (a heartbeat thread), and records the analysis or a one-line failure reason under its
claim. Submissions wake the workers; a slow poll also picks up work another process or replica
queued. While the database is unreachable the workers back off and try again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_gate.database import DatabaseUnavailable
from ci_gate.errors import CiGateError
from ci_gate.model import Analysis, to_dict
from ci_gate.server.store import ImageRecord, Store
from ci_gate.sources.interface import SourceOptions

LOG = logging.getLogger("ci_gate.server")

IDLE_POLL_SECONDS = 2.0
"""How often an idle worker looks at the queue without being woken (work queued by another process)."""
MAX_BACKOFF_SECONDS = 10.0
"""The longest a worker waits between tries while the database is unreachable."""


@dataclass(frozen=True)
class WorkerOptions:
    """How workers reach registries and where they may write."""

    source: SourceOptions
    """Credentials, CA bundle, insecure registries and limits for pulls."""
    scratch_dir: Path
    """Where a submitted Dockerfile is written for the analyser to read."""
    source_for: Callable[[str], SourceOptions] | None = None
    """The options for one pull string (credentials and --insecure of a registry added over the API)."""


class WorkerPool:
    """`count` daemon threads analysing queued images until `stop()`."""

    def __init__(self, store: Store, options: WorkerOptions, count: int) -> None:
        self.store = store
        self.options = options
        self.count = count
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy_lock = threading.Lock()
        self.busy = 0
        """Workers analysing right now (for /status)."""

    def start(self) -> None:
        resumed = self.store.resume_interrupted()
        if resumed:
            LOG.info("resumed %d interrupted analyses", resumed)
        for index in range(self.count):
            thread = threading.Thread(target=self._run, name=f"ci-gate-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """New work was queued: wake the idle workers."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the workers to stop; True when all did within `timeout` (an analysis may still be running:
        its image stays `analyzing` and is resumed at the next start)."""
        self._stopping.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                record = self.store.claim_next()
                backoff = 0.0
            except DatabaseUnavailable:  # PostgreSQL restarting: wait longer each time, then resume
                if not backoff:
                    LOG.warning("the database is unreachable; the workers wait for it")
                backoff = min(MAX_BACKOFF_SECONDS, max(0.5, backoff * 2))
                self._stopping.wait(backoff)
                continue
            except Exception as error:  # a locked or broken database must not kill the worker silently
                LOG.error("cannot read the queue: %s", error)
                record = None
            if record is None:
                with self._wake:
                    self._wake.wait(IDLE_POLL_SECONDS)
                continue
            with self._busy_lock:
                self.busy += 1
            try:
                self._analyse(record)
            except Exception:  # the store failed to record it: log, keep the worker; a restart resumes it
                LOG.exception("cannot record the analysis of %s", record.digest)
            finally:
                with self._busy_lock:
                    self.busy -= 1

    def _analyse(self, record: ImageRecord) -> None:
        LOG.info("analysing %s", record.pull_string)
        finished = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(record, finished), daemon=True,
                                     name="ci-gate-worker-heartbeat")
        heartbeat.start()
        try:
            try:
                document = analyse_record(record, self.options)
            except CiGateError as error:
                reason = " ".join(str(error).split())
                LOG.info("analysis of %s failed: %s", record.digest, reason)
                self._finish(record, None, reason)
                return
            except Exception as error:  # an analyser bug still ends the image's lifecycle, with a reason
                LOG.exception("analysis of %s failed unexpectedly", record.digest)
                # Only the type: an unexpected exception's text may quote image content (a secret).
                self._finish(record, None, f"internal error while analysing: {type(error).__name__}")
                return
            if self._finish(record, to_dict(document), metadata=summary(document)):
                LOG.info("analysed %s", record.digest)
        finally:
            finished.set()
            heartbeat.join()

    def _heartbeat(self, record: ImageRecord, finished: threading.Event) -> None:
        """Renew the claim's lease every third of its length until the analysis ends."""
        while not finished.wait(self.store.lease_seconds / 3):
            try:
                if record.claimed_by and not self.store.renew_lease(record.digest, record.claimed_by):
                    LOG.warning("lost the lease on %s (another replica took it over)", record.digest)
                    return
            except Exception as error:  # the database is away: the next beat tries again
                LOG.info("cannot renew the lease on %s: %s", record.digest, error)

    def _finish(self, record: ImageRecord, analysis: dict[str, Any] | None, reason: str = "",
                metadata: dict[str, Any] | None = None) -> bool:
        """Record the outcome under the claim; while the database is unreachable, try again (within the
        lease: past it another replica has the image and this result is dropped by the store)."""
        delay = 0.5
        deadline = time.monotonic() + self.store.lease_seconds
        while True:
            try:
                recorded = self.store.finish(record.digest, analysis, reason, metadata, claim=record.claimed_by)
            except DatabaseUnavailable:
                if time.monotonic() > deadline or self._stopping.is_set():
                    LOG.warning("cannot record the analysis of %s: the database stayed unreachable", record.digest)
                    return False
                self._stopping.wait(delay)
                delay = min(MAX_BACKOFF_SECONDS, delay * 2)
                continue
            if not recorded:
                LOG.warning("not recording the analysis of %s: this claim no longer holds it (its lease was taken "
                            "over, the image was deleted, or it was recorded just before a lost connection)",
                            record.digest)
            return recorded


def summary(analysis: Analysis) -> dict[str, Any]:
    """What an image record shows of its analysis (Anchore's image_content.metadata and image id)."""
    identity = analysis.identity
    platform = identity.platform.split("/")
    return {
        "image_id": (identity.config_digest or "").removeprefix("sha256:"),
        "arch": platform[1] if len(platform) > 1 else None,
        "distro": analysis.distro.id if analysis.distro else None,
        "distro_version": analysis.distro.version_id if analysis.distro else None,
        "dockerfile_mode": {"actual": "Actual", "guessed": "Guessed"}.get(analysis.dockerfile.mode.lower()),
        "image_size": identity.total_size,
        "layer_count": len(identity.layers),
    }


def analyse_record(record: ImageRecord, options: WorkerOptions) -> Analysis:
    """Pull and analyse one image by digest."""
    from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image

    dockerfile_path: Path | None = None
    try:
        if record.dockerfile:
            try:
                text = base64.b64decode(record.dockerfile, validate=True)
            except (binascii.Error, ValueError):
                raise CiGateError("the submitted dockerfile is not valid base64; re-add the image with "
                                  "force=true and a base64-encoded Dockerfile") from None
            options.scratch_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=options.scratch_dir, suffix=".Dockerfile",
                                             delete=False) as handle:
                handle.write(text)
            dockerfile_path = Path(handle.name)
        source = options.source_for(record.pull_string) if options.source_for is not None else options.source
        analysis = analyze_image(f"registry:{record.pull_string}",
                                 AnalyzeOptions(source=source, dockerfile=dockerfile_path, use_cache=False))
    finally:
        if dockerfile_path is not None:
            dockerfile_path.unlink(missing_ok=True)
    return analysis
