"""Image lookups as anchore-engine answers them: by tag (query or body), by image id, and image metadata.

By tag (`GET /images?fulltag=` or, from clients that detect API version < 0.1.6, a JSON body
`{"tag": ...}` on the same GET): only the images that tag was seen on, newest detection first, and
with `history=false` (the default) only the newest: the digest the tag points to now. A tag that
matches nothing answers 404 under v1 (the engine's "image data not found in DB") and an empty list
under v2; it never returns other images.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from typing import Any

from starlette.routing import Route

from ci_gate.errors import CiGateError
from ci_gate.model import Analysis
from ci_gate.server import shapes
from ci_gate.server.routing import Call
from ci_gate.server.service import ApiError, Service, normalise_tag
from ci_gate.server.store import ANALYZING, ImageRecord

METADATA_TYPES = ("manifest", "docker_history", "dockerfile")
"""anchore-engine's `image_metadata_types`."""
IMAGE_ID_PATTERN = re.compile(r"^[a-fA-F0-9]{64}$")


def requested_tag(call: Call) -> str | None:
    """The tag a list request names: `fulltag` / `full_tag` in the query, else `tag` in a JSON body."""
    for name in ("fulltag", "full_tag"):
        if call.query.get(name):
            return call.query[name]
    if call.body.strip():
        body = call.json()
        if isinstance(body, dict) and body.get("tag") is not None:
            if not isinstance(body["tag"], str) or not body["tag"]:
                raise ApiError(400, "the tag in the request body must be a non-empty string")
            return str(body["tag"])
    return None


def list_images(call: Call) -> Any:
    tag = requested_tag(call)
    analysis_status = call.query.get("analysis_status")
    analysis_status = None if analysis_status in (None, "", "all") else analysis_status
    image_status = call.query.get("image_status")
    if image_status not in (None, "", "all", "active"):
        records: list[ImageRecord] = []  # every image here is active
    elif tag is not None:
        records = call.service.store.images_for_tag(normalise_tag(tag), call.flag("history"))
        if analysis_status:
            records = [r for r in records if r.analysis_status == analysis_status]
    else:
        records = call.service.store.list_images(None, analysis_status)
    image_id = call.query.get("image_id")
    if image_id:
        records = [r for r in records if r.metadata.get("image_id") == image_id.removeprefix("sha256:")]
    if call.v1:
        if tag is not None and not records:
            raise ApiError(404, "image data not found in DB")
        return [shapes.image_v1(r) for r in records]
    return {"items": [shapes.image_v2(r) for r in records]}


def record_by_image_id(service: Service, image_id: str) -> ImageRecord:
    image_id = image_id.removeprefix("sha256:")
    if not IMAGE_ID_PATTERN.match(image_id):
        raise ApiError(400, f"image id {image_id!r} must be 64 hex characters")
    matches = [r for r in service.store.list_images() if r.metadata.get("image_id") == image_id.lower()]
    if not matches:
        raise ApiError(404, "cannot locate specified image")
    return max(matches, key=lambda r: (r.created_at, r.digest))


def by_image_id(handler: Any) -> Any:
    """A digest handler reached through `/images/by_id/{imageId}/...`."""
    def run(call: Call) -> Any:
        record = record_by_image_id(call.service, call.path_params["image_id"])
        return handler(replace(call, path_params={**call.path_params, "digest": record.digest}))
    return run


def delete_image(call: Call) -> Any:
    """Delete an image. Under v1 with anchore-engine's checks (`_image_deletion_checks_and_prep`): without
    `force`, an image being analysed, or the newest image of a tag with an active subscription, is not
    deleted (200, status `delete_failed`); with `force` those subscriptions are switched off first."""
    from ci_gate.server import records

    record = call.service.image(call.path_params["digest"])
    if not call.v1:
        call.service.store.delete_image(record.digest)
        return {"image_digest": record.digest, "status": "deleting", "detail": ""}
    force = call.flag("force")
    if record.analysis_status == ANALYZING and not force:
        return {"digest": record.digest, "status": "delete_failed",
                "detail": "cannot delete image that is being analyzed"}
    newest_of = [tag for tag, _ in record.tags if [r.digest for r in call.service.store.images_for_tag(tag)]
                 == [record.digest]]
    subscribed = [s for tag in newest_of for s in records.list_subscriptions(call.service.store, tag) if s["active"]]
    if subscribed and not force:
        return {"digest": record.digest, "status": "delete_failed",
                "detail": "cannot delete image that is the latest of its tags, and has active subscription"}
    for subscription in subscribed:
        records.update_subscription(call.service.store, subscription["subscription_id"], False, None)
    call.service.store.delete_image(record.digest)
    return {"digest": record.digest, "status": "deleting", "detail": None}


# --- metadata -------------------------------------------------------------------------------------


def docker_history(analysis: Analysis) -> list[dict[str, Any]]:
    """anchore-engine's docker_history (`DockerV2ManifestMetadata._history`): one entry per config history item."""
    layers = {layer.index: layer for layer in analysis.identity.layers}
    history = []
    for entry in analysis.identity.history:
        layer = layers.get(entry.layer_index) if entry.layer_index is not None and not entry.empty_layer else None
        history.append({"Created": entry.created, "CreatedBy": entry.created_by, "Comment": "",
                        "Id": layer.digest if layer is not None else "<missing>",
                        "Size": layer.size if layer is not None else 0, "Tags": []})
    return history


def inferred_dockerfile(history: list[dict[str, Any]]) -> str:
    """anchore-engine's guessed Dockerfile (`_infer_dockerfile`) from the history."""
    text = "FROM scratch\n"
    for entry in history:
        match = re.match(r"^/bin/sh -c #\(nop\) +(.*)", entry["CreatedBy"])
        command = match.group(1) if match else ("RUN " + entry["CreatedBy"] if entry["CreatedBy"] else None)
        if command:
            text += command + "\n"
    return text


def manifest_bytes(service: Service, record: ImageRecord) -> bytes:
    """The image's manifest, fetched by digest from its registry (serve keeps the analysis, not the manifest)."""
    from ci_gate.sources.registry import RegistryClient, parse_reference

    client = None
    try:
        reference = parse_reference(record.pull_string)
        client = RegistryClient(reference, service.source_for(record.pull_string))
        client.ping()
        body, _, _ = client.manifest(record.digest)
    except CiGateError as error:
        raise ApiError(500, f"cannot fetch content data manifest from the registry: {error}") from None
    finally:
        if client is not None:
            client.close()
    return body


def metadata_types(call: Call) -> Any:
    call.service.image(call.path_params["digest"])
    return list(METADATA_TYPES)


def metadata(call: Call) -> Any:
    digest, metadata_type = call.path_params["digest"], call.path_params["mtype"]
    if metadata_type not in METADATA_TYPES:
        raise ApiError(404, f"content type ({metadata_type}) not available")
    record, analysis = call.service.analysed(digest)
    history = docker_history(analysis)
    if metadata_type == "docker_history":
        raw = json.dumps(history).encode()
    elif metadata_type == "manifest":
        raw = json.dumps(json.loads(manifest_bytes(call.service, record))).encode()
    elif record.dockerfile and analysis.dockerfile.mode.lower() == "actual":
        raw = base64.b64decode(record.dockerfile)
    else:
        raw = inferred_dockerfile(history).encode()
    key = "imageDigest" if call.v1 else "image_digest"
    return {key: digest, "metadata_type": metadata_type, "metadata": base64.encodebytes(raw).decode()}


def routes(service: Service, route: Any, handlers: dict[str, Any]) -> list[Route]:
    """`handlers`: the app's digest handlers (get, check, vuln types, vulns, content types, content)."""
    out = []
    for prefix in ("/v1", "/v2"):
        by_id = f"{prefix}/images/by_id/{{image_id}}"
        out += [
            route(f"{prefix}/images/{{digest}}/metadata", metadata_types, ["GET"], service),
            route(f"{prefix}/images/{{digest}}/metadata/{{mtype}}", metadata, ["GET"], service),
            route(by_id, by_image_id(handlers["get"]), ["GET"], service),
            route(by_id, by_image_id(delete_image), ["DELETE"], service),
            route(f"{by_id}/check", by_image_id(handlers["check"]), ["GET"], service),
            route(f"{by_id}/vuln", by_image_id(handlers["vulnerability_types"]), ["GET"], service),
            route(f"{by_id}/vuln/{{vtype}}", by_image_id(handlers["vulnerabilities"]), ["GET"], service),
            route(f"{by_id}/content", by_image_id(handlers["content_types"]), ["GET"], service),
            route(f"{by_id}/content/{{ctype}}", by_image_id(handlers["content"]), ["GET"], service),
        ]
    return out
