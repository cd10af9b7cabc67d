"""stig (ci-gate extension): gate on the DISA STIG / SCAP Security Guide evaluation of the image.

The evaluation itself is `ci-gate stig IMAGE` (OpenSCAP on the image's materialised root
filesystem, docs/stig.md); it records its results by image digest and profile, and this gate reads
them for the digest being evaluated. No recorded evaluation means `not_evaluated` fires: the gate
never passes an image whose STIG rules were not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ci_gate.model import Analysis
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
_CATEGORY = {"low": "CAT III", "medium": "CAT II", "high": "CAT I"}


def _digest(call: TriggerInput) -> str:
    identity = call.context.analysis.identity
    return identity.manifest_digest or identity.config_digest or ""


def _evaluations(call: TriggerInput) -> list[object]:
    from ci_gate.stig.evaluate import evaluations_for_digest

    digest = _digest(call)
    profile = str(call.params.get("profile", "") or "")
    if not digest:
        return []
    return call.context.memo(f"stig:{digest}:{profile}", lambda: evaluations_for_digest(digest, profile))


def _rule_failed_unchecked(analysis: Analysis, params: Mapping[str, str]) -> str:
    """rule_failed checked nothing when no evaluation is recorded for the digest (and profile)."""
    from ci_gate.stig.evaluate import evaluations_for_digest

    digest = analysis.identity.manifest_digest or analysis.identity.config_digest or ""
    if digest and evaluations_for_digest(digest, str(params.get("profile", "") or "")):
        return ""
    return "no STIG evaluation recorded (run `ci-gate stig` before the gate)"


def _rule_failed(call: TriggerInput) -> Iterator[Fired]:
    from ci_gate.stig.model import StigEvaluation

    minimum = SEVERITY_RANK.get(str(call.params.get("severity", "low")), 1)
    wanted_ids = {item.lower() for item in call.params.get("rule_ids", []) or []}
    for evaluation in _evaluations(call):
        assert isinstance(evaluation, StigEvaluation)
        profile = evaluation.profile_id.removeprefix("xccdf_org.ssgproject.content_profile_")
        for rule in evaluation.rules:
            if rule.result != "fail":
                continue
            # unknown severity counts as medium, as STIG Viewer shows it
            if SEVERITY_RANK.get(rule.severity, 2) < minimum:
                continue
            names = {rule.rule_id.lower(), rule.short_id.lower(), rule.vuln_id.lower(), rule.sv_rule_id.lower(),
                     rule.stig_rule_ver.lower()} - {""}
            if wanted_ids and not names & wanted_ids:
                continue
            disa = ", ".join(part for part in (rule.vuln_id, rule.stig_rule_ver, rule.sv_rule_id, *rule.ccis)
                             if part)
            message = (f"STIG rule {rule.short_id} is open ({_CATEGORY.get(rule.severity, 'CAT II')}"
                       f"{', ' + disa if disa else ''}; profile {profile}): {rule.title}")
            yield Fired(message=message, instance_id=f"stig+{profile}+{rule.short_id}")


def _not_evaluated(call: TriggerInput) -> Iterator[Fired]:
    from ci_gate.stig.model import StigEvaluation

    evaluations = _evaluations(call)
    profile = str(call.params.get("profile", "") or "")
    if not evaluations:
        what = f"profile {profile}" if profile else "any STIG profile"
        yield Fired(message=f"The image was not evaluated against {what}: run `ci-gate stig IMAGE` for "
                            "this image digest before the gate",
                    instance_id=f"stig+not_evaluated+{profile or 'any'}")
        return
    for evaluation in evaluations:
        assert isinstance(evaluation, StigEvaluation)
        undecided = [rule for rule in evaluation.rules if rule.result in ("error", "unknown")]
        if undecided:
            yield Fired(message=f"{len(undecided)} rules of {evaluation.profile_id} could not be evaluated "
                                f"(error/unknown), e.g. {undecided[0].short_id}",
                        instance_id=f"stig+not_evaluated+{evaluation.profile_id}")


_PROFILE = ParameterSpec(name="profile", type="string", description="Only this XCCDF profile (id or short name, "
                         "e.g. stig); default: every profile evaluated for the image.", example="stig")

GATE = GateSpec(
    name="stig",
    description="ci-gate extension: results of `ci-gate stig` (OpenSCAP with SCAP Security Guide / DISA STIG "
    "content) for the image digest.",
    extension=True,
    triggers=(
        TriggerSpec(
            name="rule_failed",
            description="Triggers for each STIG/XCCDF rule the evaluation left open (failed), at or above a "
            "severity (high = CAT I), optionally only for listed rules.",
            evaluate=_rule_failed,
            unchecked=_rule_failed_unchecked,
            parameters=(
                ParameterSpec(name="severity", type="EnumString", description="Minimum XCCDF severity: low "
                              "(CAT III), medium (CAT II) or high (CAT I).", allowed_values=("low", "medium", "high"),
                              default="low", example="high"),
                ParameterSpec(name="rule_ids", type="CommaDelimitedStringList", description="Only these rules: "
                              "SSG rule names, XCCDF ids, V-/SV- ids or STIG ids (RHEL-08-040000).",
                              example="V-230487,package_telnet-server_removed"),
                _PROFILE,
            ),
            extension=True,
        ),
        TriggerSpec(
            name="not_evaluated",
            description="Triggers when no STIG evaluation is recorded for the image digest (and profile), or "
            "when rules of it ended in error/unknown.",
            evaluate=_not_evaluated,
            parameters=(_PROFILE,),
            extension=True,
        ),
    ),
)
