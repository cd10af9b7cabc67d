"""AdmissionReview admission.k8s.io/v1 requests read and answers shaped (Kubernetes, Dynamic Admission
Control): the pod spec of every checked kind, its images, warnings within the API server's limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ci_gate.redaction import escape_control
from ci_gate.server.admission_config import (
    CONTAINER_LISTS,
    MAX_WARNING_CHARS,
    MAX_WARNINGS_TOTAL_CHARS,
    REVIEW_API_VERSION,
)


class ReviewError(Exception):
    """A malformed review or provider request: answered 400 with this one line."""


@dataclass(frozen=True)
class ImageUse:
    """One image reference in the object, with where it appears."""

    reference: str
    where: str
    """e.g. `initContainers[0] (setup)`."""



def review_request(document: Any) -> dict[str, Any]:
    """The review's `request`, checked enough that deciding on it cannot fail."""
    if not isinstance(document, dict):
        raise ReviewError("the body must be an AdmissionReview object")
    if document.get("apiVersion") != REVIEW_API_VERSION or document.get("kind") != "AdmissionReview":
        raise ReviewError(f"only AdmissionReview {REVIEW_API_VERSION} is accepted (set admissionReviewVersions: "
                          "[\"v1\"] in the webhook configuration)")
    request = document.get("request")
    if not isinstance(request, dict):
        raise ReviewError("the AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 128:
        raise ReviewError("request.uid must be a non-empty string")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise ReviewError("request.kind must be {group, version, kind}")
    if request.get("operation") not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise ReviewError("request.operation must be CREATE, UPDATE, DELETE or CONNECT")
    for key in ("namespace", "name"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise ReviewError(f"request.{key} must be a string")
    if request.get("operation") in ("CREATE", "UPDATE") and not isinstance(request.get("object"), dict):
        raise ReviewError(f"request.object must be an object for {request['operation']}")
    return request


def images_of(kind: str, obj: Mapping[str, Any]) -> tuple[list[ImageUse], dict[str, str]]:
    """Every image use in the object's pod spec, and the object's labels."""
    def mapping(value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise ReviewError(f"request.object.{where} must be an object")
        return value

    metadata = obj.get("metadata") or {}
    labels = mapping(metadata, "metadata").get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ReviewError("request.object.metadata.labels must map strings to strings")
    spec = mapping(obj.get("spec"), "spec")
    path = "spec"
    if kind == "CronJob":
        spec = mapping(mapping(mapping(mapping(spec.get("jobTemplate"), "spec.jobTemplate").get("spec"),
                                       "spec.jobTemplate.spec").get("template"),
                               "spec.jobTemplate.spec.template").get("spec"), "spec.jobTemplate.spec.template.spec")
        path = "spec.jobTemplate.spec.template.spec"
    elif kind != "Pod":
        spec = mapping(mapping(spec.get("template"), "spec.template").get("spec"), "spec.template.spec")
        path = "spec.template.spec"
    uses = []
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if containers is None:
            continue
        if not isinstance(containers, list):
            raise ReviewError(f"request.object.{path}.{list_name} must be a list")
        for index, container in enumerate(containers):
            where = f"{path}.{list_name}[{index}]"
            image = mapping(container, where).get("image")
            if not isinstance(image, str) or not image.strip() or len(image) > 4096:
                raise ReviewError(f"request.object.{where}.image must be a non-empty image reference")
            container_name = container.get("name")
            shown = f" ({container_name})" if isinstance(container_name, str) and container_name else ""
            uses.append(ImageUse(image.strip(), f"{list_name}[{index}]{shown}"))
    if not uses:  # the API server validates objects before validating webhooks: a pod has containers
        raise ReviewError(f"request.object.{path}.containers is missing or empty: no pod spec to check")
    return uses, dict(labels)


def warnings_of(texts: Sequence[str]) -> list[str]:
    """Escaped, each within the API server's limit, all within its total."""
    shown: list[str] = []
    total = 0
    for text in texts:
        text = escape_control(text)
        if len(text) > MAX_WARNING_CHARS:
            text = text[: MAX_WARNING_CHARS - 1] + "…"
        if total + len(text) > MAX_WARNINGS_TOTAL_CHARS:
            shown.append(f"… {len(texts) - len(shown)} more warnings")
            break
        shown.append(text)
        total += len(text)
    return list(dict.fromkeys(shown))


def review_response(uid: str, allowed: bool, message: str | None, warnings: Sequence[str]) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": message or "denied by ci-gate"}
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}


