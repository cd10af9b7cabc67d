"""The embedded backend: analyse the image here, then evaluate the policy here. No server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ci_gate.backends.interface import Backend, BackendRequest, BackendResult
from ci_gate.model import Analysis, Evaluation
from ci_gate.policy.documents import load_policy
from ci_gate.policy.evaluation import EvaluationInput, evaluate
from ci_gate.policy.model import Policy
from ci_gate.sources.schemes import LOCAL_PREFIXES, LOCAL_SCHEMES, without_name_scheme
from ci_gate.vulns.provider import VulnerabilityData, make_provider


def default_tag(analysis: Analysis, reference: str) -> str | None:
    """The tag mappings see: the image's own tag, else a registry reference, else None (`*/*:*`)."""
    if analysis.identity.repo_tags:
        return analysis.identity.repo_tags[0]
    if reference.startswith(LOCAL_PREFIXES) or analysis.identity.scheme in LOCAL_SCHEMES:
        return None
    return without_name_scheme(reference)


def vulnerability_provider(analysis: Analysis, vuln_db: Path | None, vex: Sequence[Path] = ()) -> VulnerabilityData:
    """The image's vulnerability data (`ci_gate.vulns.provider`), which the vulnerabilities gate reads."""
    return make_provider(analysis, vuln_db, vex=list(vex) or None)


def _check_named_store(vuln_db: Path | None) -> None:
    """A store named by --vuln-db or $CI_GATE_VULN_DB must open (VulnerabilityDataError, exit 2, if not)."""
    from ci_gate.vulns.store import VulnerabilityStore, locate

    if locate(vuln_db)[1] != "default":
        VulnerabilityStore(vuln_db).close()


class LocalBackend(Backend):
    name = "local"

    def run(self, request: BackendRequest, progress: bool = False) -> BackendResult:
        # The policy and a named vulnerability store are checked before the (slow) analysis, so a typo
        # fails in milliseconds.
        policy = load_policy(request.policy)
        _check_named_store(request.vuln_db)
        from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image

        analysis = analyze_image(
            request.image,
            AnalyzeOptions(source=request.source, dockerfile=request.dockerfile, base_image=request.base_image,
                           use_cache=request.use_cache, secret_rules=request.secret_rules),
            progress=progress,
        )
        return BackendResult(analysis=analysis, evaluation=self.evaluate(policy, analysis, request))

    def evaluate(self, policy: Policy, analysis: Analysis, request: BackendRequest) -> Evaluation:
        """Evaluate an already analysed image (also used by `policy test` on analysis fixtures)."""
        tag = request.tag or default_tag(analysis, request.image)
        provider = vulnerability_provider(analysis, request.vuln_db, request.vex)
        evaluation = evaluate(policy, analysis, EvaluationInput(tag=tag, now=request.now, vulnerabilities=provider))
        # Say plainly what the vulnerability check did not cover (no data, unchecked packages, VEX).
        extra = tuple(provider.notes())
        return replace(evaluation, warnings=(*evaluation.warnings, *extra)) if extra else evaluation
