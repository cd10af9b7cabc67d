"""ancestry: the base image the image was built from (an Anchore Enterprise gate; works offline).

ci-gate knows the base image from the Dockerfile's final FROM (actual or guessed) and from
`--base-image`; digests are known when the FROM pins one (`image@sha256:...`). Enterprise's exact
message texts are not public; these are ci-gate's own (docs/policy.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ci_gate.model import Analysis
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec


def base_reference(analysis: Analysis) -> tuple[str, str]:
    """(tag reference without digest, digest) of the base image; empty strings when unknown."""
    reference = analysis.dockerfile.base_image.strip()
    if not reference or reference.lower() == "scratch":
        return "", ""
    name, _, digest = reference.partition("@")
    return name, digest


def _wildcard(pattern: str) -> re.Pattern[str]:
    if pattern.startswith("regexp:"):
        return re.compile(pattern[len("regexp:") :])
    return re.compile("^" + "(.*)".join(re.escape(piece) for piece in pattern.split("*")) + "$")


def _has_ancestor(analysis: Analysis) -> bool:
    return bool(base_reference(analysis)[0]) or any(layer.base for layer in analysis.identity.layers)


def _allowed_digest(call: TriggerInput) -> Iterator[Fired]:
    name, digest = base_reference(call.context.analysis)
    if not name and not _has_ancestor(call.context.analysis):
        return
    if not digest:
        yield Fired(
            message=f"Base image {name or 'unknown'} is not pinned by digest, so it cannot be checked "
            "against the allowed base image digests"
        )
    elif digest not in call.params["base_digest"]:
        yield Fired(message=f"Base image digest {digest} is not in the allowed base image digests")


def _allowed_tag(call: TriggerInput) -> Iterator[Fired]:
    name, _ = base_reference(call.context.analysis)
    if not name:
        return
    if not any(_wildcard(pattern).match(name) for pattern in call.params["base_tag"]):
        yield Fired(message=f"Base image tag {name} is not in the allowed base image tags")


def _denied_digest(call: TriggerInput) -> Iterator[Fired]:
    _, digest = base_reference(call.context.analysis)
    if digest and digest in call.params["ancestor_digest"]:
        yield Fired(message=f"Ancestor image digest {digest} is denylisted")


def _denied_tag(call: TriggerInput) -> Iterator[Fired]:
    name, _ = base_reference(call.context.analysis)
    if name and any(_wildcard(pattern).match(name) for pattern in call.params["ancestor_tag"]):
        yield Fired(message=f"Ancestor image tag {name} is denylisted")


def _no_ancestors(call: TriggerInput) -> Iterator[Fired]:
    if not _has_ancestor(call.context.analysis):
        yield Fired(
            message="No ancestor image is known for this image (no FROM in the Dockerfile and no "
            "--base-image)"
        )


GATE = GateSpec(
    name="ancestry",
    description="Checks the base image and ancestors the image was built from (Anchore Enterprise gate).",
    triggers=(
        TriggerSpec(
            name="allowed_base_image_digest",
            description="Triggers if the base image is not pinned to one of the allowed digests.",
            evaluate=_allowed_digest,
            parameters=(
                ParameterSpec(
                    "base_digest",
                    "CommaDelimitedStringList",
                    "Allowed base image digests.",
                    required=True,
                    example="sha256:0123...,sha256:4567...",
                ),
            ),
        ),
        TriggerSpec(
            name="allowed_base_image_tag",
            description="Triggers if the base image reference matches none of the allowed tags (`*` wildcards "
            "and `regexp:` allowed).",
            evaluate=_allowed_tag,
            parameters=(
                ParameterSpec(
                    "base_tag",
                    "CommaDelimitedStringList",
                    "Allowed base image tags.",
                    required=True,
                    example="registry1.dso.mil/ironbank/*",
                ),
            ),
        ),
        TriggerSpec(
            name="denylist_ancestor_image_digest",
            description="Triggers if the base image digest is one of the denied digests.",
            evaluate=_denied_digest,
            parameters=(
                ParameterSpec(
                    "ancestor_digest",
                    "CommaDelimitedStringList",
                    "Denied ancestor digests.",
                    required=True,
                    example="sha256:0123...",
                ),
            ),
        ),
        TriggerSpec(
            name="denylist_ancestor_image_tag",
            description="Triggers if the base image reference matches a denied tag (`*` wildcards and "
            "`regexp:` allowed).",
            evaluate=_denied_tag,
            parameters=(
                ParameterSpec(
                    "ancestor_tag",
                    "CommaDelimitedStringList",
                    "Denied ancestor tags.",
                    required=True,
                    example="docker.io/library/centos:*",
                ),
            ),
        ),
        TriggerSpec(
            name="no_ancestors_analyzed",
            description="Triggers if no ancestor (base) image is known for the image.",
            evaluate=_no_ancestors,
        ),
    ),
)
