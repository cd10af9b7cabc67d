"""distro: deny distributions and versions (an Anchore Enterprise gate; works offline).

Anchore Enterprise's exact message text is not public; ci-gate's wording is its own, so trigger
ids of this gate may differ from an Enterprise server's (docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.ecosystems import DISTRO_PACKAGE_TYPES, version_scheme_of
from ci_gate.policy.gates._common import CannotCompareVersions, compare_versions, could_not_compare
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

_CHECKS = ("=", "!=", "<", "<=", ">", ">=")


def _deny(call: TriggerInput) -> Iterator[Fired]:
    distro = call.context.analysis.distro
    if distro is None or distro.id != call.params["distro"]:
        return
    version = call.params.get("version")
    check = call.params.get("check", "=")
    if version is None:
        yield Fired(
            message=f"Distro {distro.id} {distro.version_id} is denied by policy", path=distro.source_path
        )
        return
    # A distribution ci-gate does not know: release numbers (`12`, `3.19.1`, `22.04`) in the generic order.
    scheme = version_scheme_of(DISTRO_PACKAGE_TYPES.get(distro.id, "")) or "generic"
    try:
        order = compare_versions(scheme, distro.version_id, version)
    except CannotCompareVersions as error:
        yield could_not_compare("distro", "deny", error)
        return
    holds = {
        "=": order == 0,
        "!=": order != 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }[check]
    if holds:
        yield Fired(
            message=f"Distro {distro.id} {distro.version_id} is denied by policy: version {check} {version}",
            path=distro.source_path,
        )


GATE = GateSpec(
    name="distro",
    description="Checks against the distro found in the image (Anchore Enterprise gate).",
    triggers=(
        TriggerSpec(
            name="deny",
            description="Triggers if the image distro and version match the criteria.",
            evaluate=_deny,
            parameters=(
                ParameterSpec(
                    "distro",
                    "string",
                    "Name of the distribution to match (os-release ID).",
                    required=True,
                    example="centos",
                ),
                ParameterSpec(
                    "version", "string", "Version of the distribution to compare against.", example="8"
                ),
                ParameterSpec(
                    "check",
                    "EnumString",
                    "The comparison to use in the evaluation.",
                    allowed_values=_CHECKS,
                    example="<=",
                    default="=",
                ),
            ),
        ),
    ),
)
