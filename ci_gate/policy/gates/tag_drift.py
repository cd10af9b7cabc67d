"""tag_drift: what changed since the previous image of the same tag (an Anchore Enterprise gate).

Enterprise's `tag_drift` gate compares an image with the image the same tag pointed to before,
with the triggers `packages_added`, `packages_removed` and `packages_modified` (parameter
`package_type`). Its exact message texts are not public; these are ci-gate's own (docs/policy.md).
ci-gate adds `base_image_changed`: the base image under the tag moved (where the base is known).

Where the previous image comes from: `ci-gate gate --compare-to IMAGE|sbom:FILE` locally; serve
passes the previous digest's analysis of the tag's history. Either way the caller runs the
evaluation inside `comparing_to(previous)`. Without a previous image the rules cannot be checked:
each fires an evaluation error (the rule keeps its action), never a silent pass.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ci_gate.model import Analysis, Package
from ci_gate.policy.gates.interface import (
    EVALUATION_ERROR_ID,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerInput,
    TriggerSpec,
)


@dataclass(frozen=True)
class PreviousImage:
    """The image the tag pointed to before, and how it was named (for messages)."""

    analysis: Analysis
    reference: str


_PREVIOUS: contextvars.ContextVar[PreviousImage | None] = contextvars.ContextVar("ci_gate_tag_drift_previous",
                                                                                  default=None)


@contextlib.contextmanager
def comparing_to(previous: Analysis | None, reference: str = "") -> Iterator[None]:
    """Evaluate policies inside this block against `previous` as the tag's previous image (None: unknown)."""
    name = reference or (previous.identity.reference if previous is not None else "")
    token = _PREVIOUS.set(PreviousImage(previous, name) if previous is not None else None)
    try:
        yield
    finally:
        _PREVIOUS.reset(token)


def previous_image() -> PreviousImage | None:
    return _PREVIOUS.get()


def _key(package: Package) -> tuple[str, str, str]:
    """A package's identity across images: type, name and where it lies (two copies are two packages)."""
    return package.type, package.name, _path(package)


@dataclass(frozen=True)
class PackageDrift:
    """Packages added, removed and modified (same type, name and place, another version) between two images."""

    added: tuple[Package, ...]
    removed: tuple[Package, ...]
    modified: tuple[tuple[Package, Package], ...]
    """(previous, current) pairs."""


def package_drift(previous: Analysis, current: Analysis) -> PackageDrift:
    """The package differences from `previous` to `current`."""
    before: dict[tuple[str, str, str], Package] = {}
    for package in previous.packages:
        before.setdefault(_key(package), package)
    after: dict[tuple[str, str, str], Package] = {}
    for package in current.packages:
        after.setdefault(_key(package), package)
    return PackageDrift(
        added=tuple(after[k] for k in sorted(after.keys() - before.keys())),
        removed=tuple(before[k] for k in sorted(before.keys() - after.keys())),
        modified=tuple((before[k], after[k]) for k in sorted(before.keys() & after.keys())
                       if before[k].version != after[k].version),
    )


def _not_evaluated(trigger: str) -> Fired:
    return Fired(message=f"Could not evaluate trigger tag_drift/{trigger}: the previous image of this tag is not "
                 "known (pass --compare-to IMAGE or sbom:FILE, or evaluate the tag in ci-gate serve)",
                 instance_id=EVALUATION_ERROR_ID)


def _wanted(call: TriggerInput, package: Package) -> bool:
    kind = call.params.get("package_type", "all")
    return kind == "all" or package.type == kind


def _with_drift(call: TriggerInput, trigger: str,
                fire: Callable[[PackageDrift, str], Iterator[Fired]]) -> Iterator[Fired]:
    """What `fire(drift, previous reference)` yields, or one evaluation error when the previous image is unknown."""
    previous = previous_image()
    if previous is None:
        yield _not_evaluated(trigger)
        return
    drift = call.context.memo("tag_drift:packages",
                              lambda: package_drift(previous.analysis, call.context.analysis))
    yield from fire(drift, previous.reference)


def _layer(package: Package) -> int | None:
    return package.locations[0].layer_index if package.locations else None


def _path(package: Package) -> str:
    return package.locations[0].path if package.locations else ""


def _added(call: TriggerInput) -> Iterator[Fired]:
    def fire(drift: PackageDrift, reference: str) -> Iterator[Fired]:
        for package in drift.added:
            if _wanted(call, package):
                yield Fired(message=f"Package {package.name} {package.version} ({package.type}) was added since "
                            f"the previous image {reference}", layer_index=_layer(package), path=_path(package))

    return _with_drift(call, "packages_added", fire)


def _removed(call: TriggerInput) -> Iterator[Fired]:
    def fire(drift: PackageDrift, reference: str) -> Iterator[Fired]:
        for package in drift.removed:
            if _wanted(call, package):
                yield Fired(message=f"Package {package.name} {package.version} ({package.type}) was removed since "
                            f"the previous image {reference}")

    return _with_drift(call, "packages_removed", fire)


def _modified(call: TriggerInput) -> Iterator[Fired]:
    def fire(drift: PackageDrift, reference: str) -> Iterator[Fired]:
        for old, new in drift.modified:
            if _wanted(call, new):
                yield Fired(message=f"Package {new.name} ({new.type}) changed from {old.version} to {new.version} "
                            f"since the previous image {reference}", layer_index=_layer(new), path=_path(new))

    return _with_drift(call, "packages_modified", fire)


def base_image_of(analysis: Analysis) -> str:
    """What identifies the base image: its pinned digest (Dockerfile FROM or OCI base labels), else the
    diff ids of the layers known to be the base's; '' when the base is not known."""
    reference = analysis.dockerfile.base_image.strip()
    if "@" in reference:
        return reference.partition("@")[2]
    from ci_gate.analyze.base_image import BASE_DIGEST_LABEL

    labelled = analysis.config.labels.get(BASE_DIGEST_LABEL)
    if labelled:
        return str(labelled)
    base_layers = [layer.diff_id for layer in analysis.identity.layers if layer.base]
    return ",".join(base_layers)


def _base_changed(call: TriggerInput) -> Iterator[Fired]:
    previous = previous_image()
    if previous is None:
        yield _not_evaluated("base_image_changed")
        return
    before, after = base_image_of(previous.analysis), base_image_of(call.context.analysis)
    if not before or not after:
        side = "the previous image" if not before else "this image"
        yield Fired(message=f"Could not evaluate trigger tag_drift/base_image_changed: the base image of {side} "
                    "is not known (pin FROM by digest, set the org.opencontainers.image.base.digest label, or "
                    "pass --base-image)", instance_id=EVALUATION_ERROR_ID)
    elif before != after:
        yield Fired(message=f"The base image changed since the previous image {previous.reference}")


_PACKAGE_TYPE = ParameterSpec(
    "package_type", "string", "Only packages of this type (syft's names: deb, apk, rpm, python, npm, java-archive, "
    "go-module, gem, ...), or all.", example="deb", default="all")

GATE = GateSpec(
    name="tag_drift",
    description="Compares the image with the previous image of the same tag: packages added, removed or modified "
    "(Anchore Enterprise gate), and a changed base image.",
    triggers=(
        TriggerSpec(name="packages_added", description="Triggers for each package the previous image did not have.",
                    evaluate=_added, parameters=(_PACKAGE_TYPE,)),
        TriggerSpec(name="packages_removed", description="Triggers for each package of the previous image that is "
                    "gone.", evaluate=_removed, parameters=(_PACKAGE_TYPE,)),
        TriggerSpec(name="packages_modified", description="Triggers for each package whose version differs from the "
                    "previous image's.", evaluate=_modified, parameters=(_PACKAGE_TYPE,)),
        TriggerSpec(name="base_image_changed", description="Triggers when the base image differs from the previous "
                    "image's (the pinned base digest, else the base layers); cannot evaluate where either base is "
                    "unknown.", evaluate=_base_changed, extension=True),
    ),
)
