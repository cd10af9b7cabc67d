"""The Anchore Enterprise backend: submit the image, wait for the server's analysis, fetch its
policy check and vulnerabilities, and return them as the same model the local backend produces.

The flow (Anchore's API, docs/anchore-backend.md; the Jenkins plugin's, jenkinsci/
anchore-container-scanner-plugin, with its known complaints fixed):

1. connect: URL, user (or `_api_key`) and password from options or the environment, the
   `x-anchore-account` header, TLS verified (a CA bundle from --ca-bundle); API v2, else v1;
2. submit: by digest (with its tag) when the reference is pinned, else by tag, with the
   Dockerfile (base64) and annotations from the CI context; an analysed digest is not re-analysed
   unless `force`;
3. wait: poll the image's `analysis_status` (tenacity: exponential backoff with jitter capped at
   the poll interval, a total timeout), one stderr line per state change, and stop at once on
   `analysis_failed` (the old plugin waited until its retries ran out);
4. decide: the check's top-level final action (never a per-policy one), the vulnerability listing for the
   findings' detail, and the image record and content for the analysis the reports show.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_result

from ci_gate.backends.anchore_api import (
    NOT_ANALYZED_PREFIX,
    AnchoreApi,
    ApiFailure,
    Connection,
    error_message,
    split_url,
)
from ci_gate.backends.anchore_mapping import (
    analysis_from_image,
    evaluation_from_check,
    packages_from_content,
    with_vulnerabilities,
)
from ci_gate.backends.interface import AnchoreOptions, Backend, BackendRequest, BackendResult
from ci_gate.ecosystems import ANCHORE_PACKAGE_CONTENT_TYPES
from ci_gate.errors import AnalysisError, BackendError, CiGateError
from ci_gate.http import RetryPolicy
from ci_gate.model import Analysis, Evaluation, Package
from ci_gate.sources.schemes import LOCAL_PREFIXES, without_name_scheme

__all__ = ["AnchoreBackend", "ImageTarget", "ci_annotations", "parse_target", "resolve_connection"]

DEFAULT_TIMEOUT = 1800.0
"""Seconds to wait for the server's analysis by default (large images take long)."""
DEFAULT_POLL_INTERVAL = 5.0
"""The Jenkins plugin's engineRetryInterval: the longest pause between two polls."""
FIRST_POLL_DELAY = 0.25
"""The first pause; the backoff doubles from here up to the poll interval, so a quick analysis is
seen quickly and a slow one costs the server one request per interval."""

TERMINAL_STATES = ("analyzed", "analysis_failed")

_ENVIRONMENT = {
    "url": ("ANCHORE_URL", "ANCHORECTL_URL", "ANCHORE_CLI_URL"),
    "username": ("ANCHORE_USER", "ANCHORECTL_USERNAME", "ANCHORE_CLI_USER"),
    "password": ("ANCHORE_PASS", "ANCHORECTL_PASSWORD", "ANCHORE_CLI_PASS"),
    "account": ("ANCHORE_ACCOUNT", "ANCHORECTL_ACCOUNT"),
}
"""Where each connection setting comes from when no option gives it: our names first, then
anchorectl's and anchore-cli's, which users already have in their CI secrets."""


def _from_environment(key: str, environ: Mapping[str, str]) -> str | None:
    for name in _ENVIRONMENT[key]:
        if environ.get(name, "").strip():
            return environ[name].strip() if key != "password" else environ[name]
    return None


def resolve_connection(options: AnchoreOptions, environ: Mapping[str, str], ca_bundle: str | None) -> Connection:
    """The connection from options, else the environment; a clear error for what is missing."""
    url = options.url or _from_environment("url", environ)
    if not url:
        raise BackendError("no Anchore URL: pass --anchore-url or set ANCHORE_URL (or ANCHORECTL_URL), "
                           "e.g. https://anchore.example.com/v2")
    username = options.username or _from_environment("username", environ)
    if not username:
        raise BackendError("no Anchore user: pass --anchore-user or set ANCHORE_USER (or ANCHORECTL_USERNAME); "
                           "use _api_key for an API key")
    password = options.password or _from_environment("password", environ)
    if not password:
        raise BackendError("no Anchore password: set ANCHORE_PASS (or ANCHORECTL_PASSWORD) in the CI's secret "
                           "variables")
    base_url, version = split_url(url)
    return Connection(base_url=base_url, username=username, password=password,
                      account=options.account or _from_environment("account", environ),
                      ca_bundle=ca_bundle, api_version=version)


# --- what to submit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTarget:
    """The image as the server must pull it."""

    pull_string: str
    """The registry reference the server pulls (tag or digest form)."""
    tag: str | None
    """`registry/repository:tag`: the evaluated tag (mappings match it), also sent with a digest."""
    digest: str | None
    """The manifest digest when the reference pins one."""


def parse_target(image: str, tag: str | None) -> ImageTarget:
    """A registry reference (`registry:REF`, `docker:REF` or a bare REF) for the server to pull."""
    if image.startswith(LOCAL_PREFIXES):
        raise BackendError(
            f"the anchore backend needs the image in a registry the server can pull, not {image.split(':')[0]}:; "
            "push it to a staging repository and gate registry:HOST/REPO:TAG (see docs/anchore-backend.md)")
    reference = without_name_scheme(image).strip()
    if not reference or " " in reference:
        raise BackendError(f"{image!r} is not an image reference; use registry:HOST/REPO:TAG or HOST/REPO@sha256:…")
    digest = None
    name = reference
    if "@" in reference:
        name, digest = reference.split("@", 1)
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise BackendError(f"{image!r}: the digest must be sha256:<64 hex digits>")
    own_tag = name if ":" in name.rsplit("/", 1)[-1] else None
    repository = name.rsplit(":", 1)[0] if own_tag else name
    evaluated = tag or own_tag or (None if digest else f"{repository}:latest")
    if digest is not None and evaluated is None:
        raise BackendError(f"{image!r} pins a digest but names no tag; pass --tag REPO:TAG (Anchore evaluates a "
                           "digest under a tag)")
    pull = f"{repository}@{digest}" if digest else (own_tag or f"{repository}:latest")
    return ImageTarget(pull_string=pull, tag=evaluated, digest=digest)


def ci_annotations(environ: Mapping[str, str]) -> dict[str, str]:
    """Annotations that tie the server's image record to the pipeline (GitHub, GitLab, Jenkins)."""
    annotations = {"ci_gate": "true"}
    if environ.get("GITHUB_ACTIONS") == "true":
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = environ.get("GITHUB_REPOSITORY", "")
        annotations["ci"] = "github"
        if repository and environ.get("GITHUB_RUN_ID"):
            annotations["pipeline_url"] = f"{server}/{repository}/actions/runs/{environ['GITHUB_RUN_ID']}"
        if environ.get("GITHUB_SHA"):
            annotations["commit"] = environ["GITHUB_SHA"]
        ref = environ.get("GITHUB_REF", "")
        if ref.startswith("refs/pull/") and repository:
            annotations["merge_request"] = f"{server}/{repository}/pull/{ref.split('/')[2]}"
    elif environ.get("GITLAB_CI") == "true":
        annotations["ci"] = "gitlab"
        if environ.get("CI_PIPELINE_URL"):
            annotations["pipeline_url"] = environ["CI_PIPELINE_URL"]
        if environ.get("CI_COMMIT_SHA"):
            annotations["commit"] = environ["CI_COMMIT_SHA"]
        if environ.get("CI_MERGE_REQUEST_IID"):
            project = environ.get("CI_MERGE_REQUEST_PROJECT_URL") or environ.get("CI_PROJECT_URL", "")
            annotations["merge_request"] = (f"{project}/-/merge_requests/{environ['CI_MERGE_REQUEST_IID']}"
                                            if project else environ["CI_MERGE_REQUEST_IID"])
    elif environ.get("JENKINS_URL") or environ.get("BUILD_URL"):
        annotations["ci"] = "jenkins"
        if environ.get("BUILD_URL"):
            annotations["pipeline_url"] = environ["BUILD_URL"]
        if environ.get("GIT_COMMIT"):
            annotations["commit"] = environ["GIT_COMMIT"]
        if environ.get("CHANGE_URL") or environ.get("CHANGE_ID"):
            annotations["merge_request"] = environ.get("CHANGE_URL") or environ["CHANGE_ID"]
    return annotations


def _short(digest: str) -> str:
    return digest[:19]


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _failure_reason(record: Mapping[str, Any]) -> str:
    """The server's words on a failed analysis: a reason/message field, else the last transition."""
    for key in ("analysis_error", "analysis_failure_reason", "failure_reason", "message", "detail"):
        if isinstance(record.get(key), str) and record[key]:
            return str(record[key])
    history = record.get("analysis_status_detail")
    if isinstance(history, list) and history and isinstance(history[-1], Mapping):
        last = history[-1]
        for key in ("detail", "message", "reason"):
            if isinstance(last.get(key), str) and last[key]:
                return str(last[key])
        return ", ".join(f"{key} {last[key]}" for key in ("from_status", "to_status", "timestamp", "source")
                         if last.get(key))
    return ""


class AnchoreBackend(Backend):
    name = "anchore"

    def __init__(self, environ: Mapping[str, str] | None = None, log: Callable[[str], None] = _stderr,
                 sleep: Callable[[float], None] = time.sleep, retry: RetryPolicy | None = None):
        self.environ = os.environ if environ is None else environ
        """Where connection settings not given as options come from."""
        self.log = log
        """Receives one line per event (submission, state change); stderr by default."""
        self.sleep = sleep
        """Pauses between polls (tests keep the real one; the stand-in server runs in real time)."""
        self.retry = retry
        """Retries of each request; None = the connection's default."""

    def run(self, request: BackendRequest, progress: bool = False) -> BackendResult:
        options = request.anchore or AnchoreOptions()
        target = parse_target(request.image, request.tag)
        connection = resolve_connection(options, self.environ, request.source.ca_bundle)
        timeout = options.timeout if options.timeout is not None else DEFAULT_TIMEOUT
        interval = options.poll_interval if options.poll_interval is not None else DEFAULT_POLL_INTERVAL
        if timeout <= 0 or interval <= 0:
            raise BackendError("--timeout and --poll-interval must be positive numbers of seconds")
        deadline = time.monotonic() + timeout
        if self.retry is not None:
            connection = replace(connection, retry=self.retry)
        api = AnchoreApi(connection)
        warnings: list[str] = []
        if request.policy != BackendRequest.policy:
            warnings.append(f"--policy {request.policy} is not used by the anchore backend: the server's policy "
                            "decides (its active one, or --anchore-policy-id)")
        record = self._submit(api, request, target, options.force, warnings)
        digest = str(record.get("image_digest") or target.digest or "")
        if not digest.startswith("sha256:"):
            raise BackendError("the Anchore server did not say which digest it is analysing (no image_digest)")
        record = self._wait(api, record, digest, request.image, timeout, deadline, interval)
        # The check, the vulnerability listing and the image content are independent: asked at once,
        # the gate's time after the analysis is the slowest of them, not their sum.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="anchore") as pool:
            checking = pool.submit(self._check, api, digest, target.tag or "", options.policy_id, deadline, interval)
            listing = pool.submit(api.vulnerabilities, digest)
            describing = pool.submit(self._analysis, api, record, digest, request)
            evaluation = checking.result()
            try:
                evaluation = with_vulnerabilities(evaluation, listing.result())
            except BackendError as error:  # the decision stands without the listing (as in the Jenkins plugin)
                warnings.append(f"vulnerability details not fetched from Anchore: {error}")
            analysis = describing.result()
        if warnings:
            evaluation = replace(evaluation, warnings=(*evaluation.warnings, *warnings))
        return BackendResult(analysis=analysis, evaluation=evaluation)

    # --- submit ----------------------------------------------------------------------------------

    def _dockerfile(self, request: BackendRequest) -> str | None:
        if request.dockerfile is None:
            return None
        try:
            data = request.dockerfile.read_bytes()
        except OSError as error:
            raise BackendError(f"cannot read the Dockerfile {request.dockerfile}: {error.strerror}") from None
        return base64.b64encode(data).decode("ascii")  # one line: the API's pattern forbids wrapping

    def _submit(self, api: AnchoreApi, request: BackendRequest, target: ImageTarget, force: bool,
                warnings: list[str]) -> dict[str, Any]:
        if target.digest is not None:
            response = api.get_image_response(target.digest)
            if response.status_code == 200 and not force:
                record = api.image_record(response.json())
                state = str(record.get("analysis_status"))
                if state != "analysis_failed":  # a failed one is re-added: the server resets it
                    if state == "analyzed":
                        self.log(f"ci-gate: anchore: {_short(target.digest)} is already analysed; not re-analysing "
                                 "(--force re-analyses)")
                    return record
            elif response.status_code == 404:
                force = False  # new to the server: nothing to re-analyse (v1 refuses force for unknown digests)
            elif response.status_code in (401, 403):
                raise api.failure(response, "image lookup")
        dockerfile = self._dockerfile(request)
        annotations = ci_annotations(self.environ)
        try:
            record = api.add_image(target.pull_string, target.tag, target.digest, dockerfile, annotations, force)
        except ApiFailure as failure:
            if not (failure.status == 400 and dockerfile and "dockerfile" in failure.server_message.lower()):
                raise
            # A Dockerfile for an already known digest needs force; keep the server's analysis.
            warnings.append("the server already had this image, analysed without the Dockerfile given; "
                            "its analysis is used (--force re-analyses it with the Dockerfile)")
            record = api.add_image(target.pull_string, target.tag, target.digest, None, annotations, force)
        self.log(f"ci-gate: anchore: submitted {target.pull_string} ({api.api_version()} API"
                 f"{', forced re-analysis' if force else ''})")
        return record

    # --- wait ------------------------------------------------------------------------------------

    def _poll(self, api: AnchoreApi, digest: str, notes: list[str]) -> dict[str, Any] | None:
        """The record now, or None when the server did not answer usefully this time (keep waiting)."""
        try:
            response = api.get_image_response(digest)
        except BackendError as error:  # unreachable (restarting?): the total timeout still bounds the wait
            notes.append(str(error))
            return None
        if response.status_code == 200:
            try:
                return api.image_record(response.json())
            except ValueError:
                notes.append("the server's answer is not JSON")
                return None
        if response.status_code in (429, 500, 502, 503, 504):
            notes.append(f"HTTP {response.status_code}: {error_message(response)}")
            return None
        raise api.failure(response, "image status")

    def _wait(self, api: AnchoreApi, record: dict[str, Any], digest: str, image: str, timeout: float,
              deadline: float, interval: float) -> dict[str, Any]:
        start = time.monotonic()
        state = {"last": str(record.get("analysis_status") or "unknown"), "unreachable": False}
        self.log(f"ci-gate: anchore: {_short(digest)} {state['last']}")
        notes: list[str] = []

        def observe(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                if not state["unreachable"] and notes:
                    self.log(f"ci-gate: anchore: server not answering ({notes[-1]}); still waiting")
                state["unreachable"] = True
                return None
            state["unreachable"] = False
            status = str(current.get("analysis_status") or "unknown")
            if status != state["last"]:
                self.log(f"ci-gate: anchore: {_short(digest)} {status} ({time.monotonic() - start:.1f}s)")
                state["last"] = status
            return current

        def poll() -> dict[str, Any] | None:
            return observe(self._poll(api, digest, notes))

        if str(record.get("analysis_status")) in TERMINAL_STATES:
            final: dict[str, Any] | None = record
        else:
            first = min(FIRST_POLL_DELAY, interval)

            def pause(call: RetryCallState) -> float:
                # Exponential backoff from `first`, capped at the poll interval, less up to a quarter
                # at random (runners polling one server spread out; never longer than the interval),
                # and never past the timeout.
                backoff = min(first * 2 ** (call.attempt_number - 1), interval) * (1 - random.uniform(0, 0.25))
                return max(0.0, min(backoff, deadline - time.monotonic()))

            retrying = Retrying(
                stop=lambda call: time.monotonic() >= deadline,
                wait=pause,
                retry=retry_if_result(lambda current: current is None
                                      or str(current.get("analysis_status")) not in TERMINAL_STATES),
                retry_error_callback=lambda call: call.outcome.result() if call.outcome else None,
                sleep=self.sleep,
            )
            final = retrying(poll)
        status = str(final.get("analysis_status")) if final else state["last"]
        if status == "analysis_failed":
            reason = _failure_reason(final or {})
            raise BackendError(f"Anchore could not analyse {image} ({_short(digest)}): analysis_failed"
                               + (f" ({reason})" if reason else "")
                               + "; fix the cause on the server, then run again with --force to re-analyse")
        if final is None or status != "analyzed":
            raise BackendError(f"Anchore did not finish analysing {image} ({_short(digest)}) within {timeout:g}s "
                               f"(last status: {status}); raise --timeout, or check the server's analyzers")
        return final

    # --- decide ----------------------------------------------------------------------------------

    def _check(self, api: AnchoreApi, digest: str, tag: str, policy_id: str | None, deadline: float,
               interval: float) -> Evaluation:
        while True:
            response = api.check_response(digest, tag, policy_id)
            if response.status_code == 200:
                try:
                    document = response.json()
                except ValueError:
                    raise BackendError("the Anchore check answer is not JSON") from None
                return evaluation_from_check(document, api.api_version(), digest, tag)
            message = error_message(response)
            # Just analysed: v1 may still say "not analyzed" for a moment; ask again in time.
            if response.status_code == 404 and message.startswith(NOT_ANALYZED_PREFIX) \
                    and time.monotonic() + interval < deadline:
                self.sleep(min(interval, 1.0))
                continue
            failure = api.failure(response, "policy check")
            if response.status_code == 404 and "policy" in message.lower():
                raise BackendError(f"{failure}; activate a policy on the server or pass --anchore-policy-id")
            raise failure

    def _analysis(self, api: AnchoreApi, record: Mapping[str, Any], digest: str, request: BackendRequest
                  ) -> Analysis:
        warnings: list[str] = []
        packages: list[Package] = []
        try:
            available = set(api.content_types(digest))
            for content_type in ANCHORE_PACKAGE_CONTENT_TYPES:
                if content_type in available:
                    packages.extend(packages_from_content(api.content(digest, content_type)))
        except BackendError as error:
            warnings.append(f"package list not fetched from Anchore: {error}")
        analysis = analysis_from_image(record, request.image, packages, warnings)
        if request.dockerfile is not None:
            # The reports point at Dockerfile lines; the file is the one the server was given.
            from ci_gate.analyze.dockerfile import parse_dockerfile

            try:
                text = request.dockerfile.read_text("utf-8", errors="replace")
                analysis = replace(analysis, dockerfile=parse_dockerfile(text, str(request.dockerfile)))
            except (OSError, AnalysisError, CiGateError) as error:
                analysis = replace(analysis, warnings=(*analysis.warnings, f"Dockerfile not parsed: {error}"))
        return analysis
