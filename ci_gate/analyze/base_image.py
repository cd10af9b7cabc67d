"""Which layers of an image came from its base image, so every package can be marked base or app.

In order of trust:
1. `--base-image REF|PATH`: the base's layers (diff ids or blob digests), compared in order with
   the image's; the common prefix is the base. Exact.
2. History: the image config's `history` records every build step, base steps first. A `CMD` or
   `ENTRYPOINT` step that still has layer-creating steps after it ends a base image's Dockerfile
   (an application's own Dockerfile puts its CMD last), so the base ends at the last such step.
   Failing that, an official image's root filesystem step `ADD file:<digest> in /` is the base.
   The `org.opencontainers.image.base.name` / `.digest` labels (or annotations) say that a base
   exists and which; they cannot say how many layers it has, so they are reported with the method.
3. Otherwise the first layer alone is taken as the base (a distribution root filesystem).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ci_gate.model import Layer

BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"

_ROOTFS_ADD = re.compile(r"(?:#\(nop\)\s*)?ADD\s+(?:--\S+\s+)*file:[0-9a-f]+\s+in\s+/\s*$")
_END_OF_BASE = re.compile(r"(?:#\(nop\)\s*)?(?:CMD|ENTRYPOINT)\b")


def base_reference(raw_image_config: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> str:
    """`name@digest` (or either alone) of the base image named by the OCI labels or annotations."""
    sources: list[Mapping[str, Any]] = [annotations or {}]
    config = raw_image_config.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("Labels"), Mapping):
        sources.append(config["Labels"])
    for source in sources:
        name = str(source.get(BASE_NAME_LABEL) or "")
        digest = str(source.get(BASE_DIGEST_LABEL) or "")
        if name and digest:
            return f"{name}@{digest}"
        if name or digest:
            return name or digest
    return ""


def base_layers(
    raw_image_config: Mapping[str, Any],
    layers: Sequence[Layer],
    base_image_layers: Sequence[str] | None,
) -> tuple[set[int], str]:
    """The indexes of the layers that belong to the base image, and how that was decided.

    `base_image_layers` are the base image's layer diff ids (or blob digests), bottom first, when
    the user named the base image. The method is one of `base-image`, `history`, `label+history`,
    `first-layer`, `label+first-layer`, or empty when the image has no layers.
    """
    if not layers:
        return set(), ""
    if base_image_layers is not None:
        common = 0
        for layer, base_digest in zip(layers, base_image_layers, strict=False):
            if base_digest not in (layer.diff_id, layer.digest):
                break
            common += 1
        if common < len(base_image_layers):
            # Not built FROM that image (or from another version of it): say so, trust only the match.
            return set(range(common)), (
                f"base-image (only {common} of the base image's {len(base_image_layers)} layers are "
                "at the bottom of this image)"
            )
        return set(range(common)), "base-image"
    labelled = bool(base_reference(raw_image_config))
    prefix = "label+" if labelled else ""
    split = _split_by_history(raw_image_config.get("history"), len(layers))
    if split is not None:
        return set(range(split)), prefix + "history"
    return {0}, prefix + "first-layer"


def _split_by_history(history: Any, layer_count: int) -> int | None:
    """How many layers the base has according to the build steps, or None when history cannot tell."""
    if not isinstance(history, list) or not history:
        return None
    steps: list[tuple[str, bool]] = []
    for entry in history:
        if not isinstance(entry, Mapping):
            return None
        steps.append((str(entry.get("created_by") or ""), not entry.get("empty_layer", False)))
    if sum(1 for _, makes_layer in steps if makes_layer) != layer_count:
        return None  # history that does not describe these layers is no evidence
    layers_before = []
    count = 0
    for _, makes_layer in steps:
        count += makes_layer
        layers_before.append(count)  # layers made up to and including this step
    end_of_base = None
    for position, (created_by, _) in enumerate(steps):
        later_layers = layer_count - layers_before[position]
        if _END_OF_BASE.match(_instruction(created_by)) and later_layers > 0:
            end_of_base = layers_before[position]
    if end_of_base:
        return end_of_base
    rootfs_adds = [position for position, (created_by, _) in enumerate(steps)
                   if _ROOTFS_ADD.search(created_by.strip())]
    if rootfs_adds and layers_before[rootfs_adds[-1]] < layer_count:
        return layers_before[rootfs_adds[-1]]
    return None


def _instruction(created_by: str) -> str:
    """The Dockerfile instruction of a step: `/bin/sh -c #(nop)  CMD ["bash"]` → `CMD ["bash"]`;
    BuildKit writes `CMD ["bash"]` as is, a RUN step as `RUN /bin/sh -c ...` or `/bin/sh -c ...`."""
    text = created_by.strip()
    marker = text.find("#(nop)")
    if marker >= 0:
        return text[marker + len("#(nop)"):].strip()
    if text.startswith("/bin/sh -c "):
        return "RUN"
    return text
