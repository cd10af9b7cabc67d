"""`ci-gate watch`: re-match the SBOMs earlier gates saved, and send `vuln_update` events (no server needed).

A nightly pipeline job: `ci-gate db update` then `ci-gate watch --sbom-dir DIR --vuln-db DB --notify
URL`. The work is in `ci_gate.rematch`; this module parses, delivers and prints. Each event is one
HTTP POST of anchore-engine's webhook body (`data.notification_payload` carries the
`diff_vulnerability_result` and `imageDigest`), so a receiver written for anchore-engine works.
Exit codes: 0 every event delivered (or none to send), 2 an event could not be delivered or the
inputs are unusable; the state is then left as it was, so the next run sends the same events again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from ci_gate.errors import CiGateError, PublishError, UsageError
from ci_gate.gate import GateOptions, GateResult
from ci_gate.model import Analysis

if TYPE_CHECKING:  # the engine is imported by the command that uses it: every ci-gate run loads this module
    from ci_gate.rematch import ImageDiff

DEFAULT_STATE_NAME = ".ci-gate-watch.sqlite"
"""The state file inside --sbom-dir when --state is not given (hidden: not a saved SBOM)."""
USER_ID = "admin"
"""anchore-engine's single-tenant user; the CLI has no accounts."""
DELIVERY_TIMEOUT = 10.0


def notification_body(diff: ImageDiff, now: float | None = None) -> dict[str, Any]:
    """anchore-engine's webhook body for one `vuln_update` (subsys/notifications.py).

    The notification id is derived from the image and its difference, so a re-sent event (after a
    failed run) carries the same id and a receiver can drop the duplicate."""
    created = int(now if now is not None else time.time())
    result = diff.result()
    fingerprint = json.dumps([diff.digest, result], sort_keys=True, separators=(",", ":"))
    notification_id = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:32]
    payload = {"userId": USER_ID, "subscription_key": diff.tag or diff.digest, "subscription_type": "vuln_update",
               "notificationId": notification_id, "diff_vulnerability_result": result,
               "imageDigest": diff.digest}
    return {"queueId": "watcherq", "userId": USER_ID, "dataId": notification_id, "created_at": created,
            "last_updated": created, "record_state_key": "active", "record_state_val": None, "tries": 0,
            "max_tries": created + 3600,
            "data": {"notification_user": USER_ID, "notification_user_email": None,
                     "notification_type": "vuln_update", "notification_payload": payload}}


def deliver(url: str, bodies: Sequence[dict[str, Any]], ca_bundle: str | None = None) -> None:
    """POST every body to `url` (retries with backoff in `ci_gate.http`); PublishError on the first failure."""
    from ci_gate.http import HttpError, new_session, send

    # Webhook URLs often carry their secret in the path (Slack's, Teams'): name only the receiver's origin.
    parts = urlsplit(url)
    receiver = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    session = new_session(ca_bundle=ca_bundle)
    try:
        for body in bodies:
            notification_id = body["dataId"]
            try:
                # Not followed: an http→https redirect would turn the POST into a GET that answers 200, and
                # an event the receiver never processed would count as delivered (and never be sent again).
                response = send(session, "POST", url, timeout=DELIVERY_TIMEOUT, json=body,
                                headers={"Idempotency-Key": notification_id}, allow_redirects=False)
            except HttpError as error:
                raise PublishError(f"cannot deliver vuln_update to {receiver}: {error.detail}; the state "
                                   "was kept, the next run sends it again") from None
            status = response.status_code
            response.close()
            if 300 <= status < 400:
                raise PublishError(f"{receiver} answered HTTP {status}, a redirect, to a vuln_update; watch does not "
                                   "follow redirects: give --notify the URL the receiver redirects to (the state "
                                   "was kept, the next run sends it again)")
            if not 200 <= status < 300:
                raise PublishError(f"{receiver} answered HTTP {status} to a vuln_update; the state was "
                                   "kept, the next run sends it again")
    finally:
        session.close()


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:  # the error quotes parts of the URL, which may hold a token: name the flag only
        raise UsageError("--notify is not a valid URL (check the brackets of an IPv6 host and the port): give the "
                         "receiver's webhook URL, e.g. https://hooks.example.com/ci-gate") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--notify is not an http(s) URL (scheme {parts.scheme or 'missing'!r}): give the "
                         "receiver's webhook URL, e.g. "
                         "https://hooks.example.com/ci-gate")


def run_watch(sbom_dir: Path, vuln_db: Path | None, notify: str | None, state: Path | None,
              ca_bundle: str | None = None, vex: Sequence[Path] = ()) -> tuple[int, list[str]]:
    """One watch run; returns (events delivered, lines for the log). Errors are CiGateError. `vex`: the
    documents a gate takes with --vex (else $CI_GATE_VEX, as for a gate); what they suppress is no event."""
    from ci_gate.rematch import rematch_folder
    from ci_gate.saved_sbom import saved_files
    from ci_gate.vulns.store import VulnerabilityStore
    from ci_gate.vulns.vex import load_vex, vex_paths

    if notify:
        _check_url(notify)
    if ca_bundle is not None and not Path(ca_bundle).is_file():  # else found only the night an event is due
        raise UsageError(f"--ca-bundle {ca_bundle} is not a file: give the PEM file of the CA that signed the "
                         "receiver's certificate")
    list(saved_files(sbom_dir))  # a missing folder fails here, before the store or the state is touched
    paths = vex_paths(vex)
    documents = load_vex(paths) if paths else None  # an unreadable VEX file fails before the state is touched
    state_path = state if state is not None else sbom_dir / DEFAULT_STATE_NAME
    with VulnerabilityStore(vuln_db) as store:
        watch_state, result = rematch_folder(state_path, sbom_dir, store, documents)
    try:
        bodies = [notification_body(diff) for diff in result.diffs]
        if bodies and not notify:
            raise UsageError(f"{len(bodies)} image(s) have vulnerability changes and no --notify URL was "
                             "given: pass --notify URL or set CI_GATE_NOTIFY_URL (the example pipelines set it "
                             "from the CI_GATE_WEBHOOK_URL secret); the state was kept")
        if bodies and notify:
            deliver(notify, bodies, ca_bundle)
        watch_state.commit()
    finally:
        watch_state.rollback()
    lines = []
    if result.first_run:
        lines.append(f"baseline recorded for {result.images} image(s); later runs report changes")
    else:
        lines.append(f"{result.changed_records} changed record(s), {result.rematched_variants} package "
                     f"variant(s) re-matched, {len(result.diffs)} vuln_update event(s) sent for "
                     f"{result.images} image(s)")
        if result.new_images or result.removed_images:
            lines.append(f"{result.new_images} new image(s) recorded as baseline, {result.removed_images} "
                         "removed")
    for diff in result.diffs:
        lines.append(f"vuln_update {diff.tag or diff.digest}: {len(diff.added)} added, {len(diff.updated)} "
                     f"updated, {len(diff.removed)} removed")
    return len(result.diffs), lines


def previous_analysis(spec: str, options: GateOptions) -> Analysis:
    """The image `--compare-to` names: a saved analysis or SBOM (`sbom:FILE`), or any image reference."""
    from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
    from ci_gate.saved_sbom import is_analysis_document, load_analysis, read_document

    try:
        if spec.startswith("sbom:"):
            path = Path(spec[len("sbom:"):])
            if is_analysis_document(read_document(path)):
                return load_analysis(path)
        return analyze_image(spec, AnalyzeOptions(source=options.source, use_cache=options.use_cache))
    except CiGateError as error:  # said alone, "cannot read x.json" reads as if the gated image failed
        raise type(error)(f"--compare-to {spec}: {error}") from None


def gate_with_history(options: GateOptions, compare_to: str | None, save_sbom: str | None,
                      progress: bool = False) -> GateResult:
    """`run_gate` with the tag's previous image for tag_drift (`--compare-to`), saving the analysis after
    (`--save-sbom`) so `ci-gate watch` can re-match it later."""
    from ci_gate.gate import run_gate
    from ci_gate.policy.gates.tag_drift import comparing_to
    from ci_gate.saved_sbom import prepare_folder, save_analysis

    if save_sbom:
        prepare_folder(Path(save_sbom))
    previous = previous_analysis(compare_to, options) if compare_to else None
    with comparing_to(previous, compare_to or ""):
        result = run_gate(options, progress=progress)
    if save_sbom:
        save_analysis(result.analysis, Path(save_sbom), result.evaluation.tag or options.tag)
    return result


def register(app: typer.Typer) -> None:
    """Add the `watch` command to the root app."""

    @app.command("watch", epilog="Exit codes: 0 every event delivered (or nothing changed), 2 an event could not "
                 "be delivered or an input is unusable (the next run sends the same events again).")
    def watch(
        sbom_dir: Annotated[Path, typer.Option("--sbom-dir", help="The folder `ci-gate gate --save-sbom` writes.")],
        notify: Annotated[str | None, typer.Option("--notify", envvar="CI_GATE_NOTIFY_URL",
                                                   help="Webhook URL: each vuln_update is POSTed as anchore-engine's "
                                                   "notification body (or $CI_GATE_NOTIFY_URL: a URL whose path is "
                                                   "its secret stays out of process lists).")] = None,
        vuln_db: Annotated[Path | None, typer.Option("--vuln-db", help="The vulnerability store (after `ci-gate "
                                                     "db update`).")] = None,
        state: Annotated[Path | None, typer.Option("--state", help="The watch state file (default: "
                                                   f"SBOM-DIR/{DEFAULT_STATE_NAME}).")] = None,
        ca_bundle: Annotated[Path | None, typer.Option("--ca-bundle", help="CA bundle for the receiver's TLS.")
                             ] = None,
        vex: Annotated[list[Path] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX document whose "
                                                       "not_affected/fixed statements suppress matches, as for "
                                                       "`gate --vex` (repeatable; default: $CI_GATE_VEX).")] = None,
    ) -> None:
        """Re-match saved SBOMs against the updated vulnerability store; send vuln_update for each image whose
        vulnerabilities changed. The first run records a baseline."""
        _, lines = run_watch(sbom_dir, vuln_db, notify, state, str(ca_bundle) if ca_bundle else None, vex or ())
        for line in lines:
            typer.echo(line)
