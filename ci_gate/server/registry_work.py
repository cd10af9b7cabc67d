"""Registry work of API calls (resolving a tag to its digest) in its own small pool, with a deadline.

A registry that hangs must not slow down anything else the server answers: the work runs on a
few daemon threads of its own, a caller waits at most `deadline` seconds for it (queueing
included), and when every thread and queue slot is taken a new add is refused at once (503,
Retry-After). The handlers that wait on registry work run under their own thread limit (CALLERS,
app.py), so the threads answering everything else (policies, status polls, checks) are never
spent on a registry.

Error texts: for a registry the operator named (`--allow-registry HOST`, or one with credentials)
the full reason is given; for any other host (one let through by `--allow-registry '*'`) the
answer is the same whatever happened (refused, timed out, not a registry, redirected, TLS), so the
API cannot be used to probe internal hosts and ports. The full reason is logged for the operator
either way.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Generic, TypeVar

import requests

from ci_gate.errors import CiGateError, SourceError
from ci_gate.sources.interface import SourceOptions
from ci_gate.sources.registry import RegistryReference

LOG = logging.getLogger("ci_gate.server")

T = TypeVar("T")

DEFAULT_THREADS = 8
DEFAULT_BACKLOG = 56
"""Jobs that may wait for a thread; past threads + backlog in flight an add is refused (503)."""
CALLERS = DEFAULT_THREADS + DEFAULT_BACKLOG
"""HTTP handler threads that may wait on registry work, apart from those answering everything else."""
DEFAULT_DEADLINE = 30.0
"""Seconds an add waits for the registry in all (ping, token, manifest, retries)."""
BUSY_RETRY_AFTER = 5
"""Seconds a refused add is asked to wait before trying again."""


class RegistryBusy(Exception):
    """Every registry thread and queue slot is taken: try again later."""


class RegistryDeadline(Exception):
    """The registry work did not finish within the deadline."""


class RegistryFailure(Exception):
    """The registry work failed; `public` is what the API may say, `reason` what the log says."""

    def __init__(self, public: str, reason: str) -> None:
        super().__init__(public)
        self.public = public
        self.reason = reason


class _Job(Generic[T]):
    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.future: Future[T] = Future()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.work()
        except BaseException as error:  # handed to the waiting caller
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class RegistryPool:
    """`threads` daemon threads (a hung socket never blocks the process from exiting) and a bounded queue."""

    def __init__(self, threads: int = DEFAULT_THREADS, backlog: int = DEFAULT_BACKLOG,
                 deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = deadline
        self._slots = threading.BoundedSemaphore(threads + backlog)
        self._queue: queue.SimpleQueue[_Job[object] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"ci-gate-registry-{n}", daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job.run()
            finally:
                self._slots.release()

    def run(self, work: Callable[[], T]) -> T:
        """The work's result within the deadline; RegistryBusy, RegistryDeadline, or the work's own exception."""
        if not self._slots.acquire(blocking=False):
            raise RegistryBusy()
        job = _Job(work)
        self._queue.put(job)  # type: ignore[arg-type]
        try:
            return job.future.result(timeout=self.deadline)
        except FutureTimeout:
            job.future.cancel()  # still queued: never started; running: its slot frees when it ends
            raise RegistryDeadline() from None

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


def trusted_registry(host: str, options: SourceOptions) -> bool:
    """A registry the operator named: on the allowlist by name (`--allow-registry HOST`, or one the
    server has credentials for), not merely let through by `--allow-registry '*'`. Without an
    allowlist (an in-process server): an insecure registry or one with credentials."""
    from ci_gate.sources.registry_auth import ALLOW_ANY, host_allowed, resolve_credentials

    if options.allowed_registries is not None:
        return host_allowed(host, tuple(entry for entry in options.allowed_registries if entry != ALLOW_ANY))
    if host in options.insecure_registries:
        return True
    try:
        return resolve_credentials(host, options) is not None
    except CiGateError:
        return False


def fetch_digest(reference: RegistryReference, options: SourceOptions) -> str:
    """The manifest digest `reference` points at now (what Anchore stores when an image is added)."""
    from ci_gate.sources.registry import RegistryClient

    client = RegistryClient(reference, options)
    try:
        client.ping()
        body, _, digest = client.manifest(reference.reference)
    finally:
        client.close()
    if not _looks_like_manifest(body):  # any web server answers 200 to a GET; that is not an image
        raise SourceError(f"registry {reference.host} did not answer with an image manifest for "
                          f"{reference.repository}:{reference.reference}")
    return digest


def _looks_like_manifest(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return (isinstance(document, dict) and document.get("schemaVersion") in (1, 2)
            and any(key in document for key in ("config", "manifests", "layers", "fsLayers")))


def resolve_digest(pool: RegistryPool, reference: RegistryReference, options: SourceOptions) -> str:
    """fetch_digest in the pool, every request's timeout within the pool's deadline; errors as RegistryFailure."""
    # Each request (a ping, a token, a manifest, tried up to three times) gets a third of the deadline,
    # so a pool thread stuck on a hung registry is free again about when its caller gave up.
    bounded = replace(options, timeout=min(options.timeout, max(pool.deadline / 3, 0.1)))
    host = reference.host
    generic = (f"registry {host} could not be reached or did not answer as a registry; check the address, "
               "or ask the operator to name it (ci-gate serve --allow-registry HOST)")
    trusted = trusted_registry(host, options)
    try:
        return pool.run(lambda: fetch_digest(reference, bounded))
    except RegistryBusy:
        raise
    except RegistryDeadline:
        reason = f"registry {host} did not answer within {pool.deadline:g} s"
        raise RegistryFailure(reason if trusted else generic, reason) from None
    except requests.TooManyRedirects:  # before everything else: a loop is neither TLS nor a timeout
        reason = f"registry {host}: too many redirects (a redirect loop)"
        raise RegistryFailure(reason if trusted else generic, reason) from None
    except CiGateError as error:
        reason = " ".join(str(error).split())
        raise RegistryFailure(reason if trusted else generic, reason) from None
    except requests.RequestException as error:
        reason = f"registry {host}: {type(error).__name__}"
        raise RegistryFailure(reason if trusted else generic, reason) from None


def head_digest(pool: RegistryPool, reference: RegistryReference, options: SourceOptions) -> str | None:
    """The digest a tag names now from a manifest HEAD request's Docker-Content-Digest (a HEAD does not
    count against Docker Hub's pull limit, so watching a tag hourly costs nothing); None when the
    registry does not say (then the caller resolves with a GET)."""
    from ci_gate.sources.oci_layout import ACCEPT_MANIFESTS
    from ci_gate.sources.registry import RegistryClient

    bounded = replace(options, timeout=min(options.timeout, max(pool.deadline / 3, 0.1)))

    def head() -> str | None:
        client = RegistryClient(reference, bounded)
        try:
            client.ping()
            url = f"{client.base}/v2/{reference.repository}/manifests/{reference.reference}"
            headers = {"Accept": ", ".join(ACCEPT_MANIFESTS)}
            response = client._send("HEAD", url, headers=headers, auth=client.auth)
            if response.status_code == 401:
                client.authenticate(response.headers.get("WWW-Authenticate", ""))
                response = client._send("HEAD", url, headers=headers, auth=client.auth)
            digest = response.headers.get("Docker-Content-Digest", "").strip()
            return digest if response.status_code == 200 and digest.startswith("sha256:") else None
        finally:
            client.close()

    try:
        return pool.run(head)
    except (RegistryBusy, RegistryDeadline, CiGateError, requests.RequestException):
        return None
