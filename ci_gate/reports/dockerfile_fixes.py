"""A Dockerfile line and its replacement: the fix a finding maps to in the Dockerfile the user gave.

`exact` fixes can be applied as they are (a pull-request suggestion, SARIF `fixes`); the others
show the line to change and what to write instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ci_gate.model import Analysis, DockerfileInstruction, Finding
from ci_gate.reports.advice import port_of
from ci_gate.reports.advice_table import NON_ROOT_USER
from ci_gate.reports.common import is_secret, redact


@dataclass(frozen=True)
class DockerfileFix:
    """A suggested change of the Dockerfile the user gave (`--dockerfile`)."""

    path: str
    """The Dockerfile as given (repository-relative when possible)."""
    start_line: int
    end_line: int
    original: str
    """The instruction as ci-gate read it (continuations joined), redacted; empty when it may hold a secret."""
    replacement: str
    """The suggested text for those lines; empty means delete them."""
    exact: bool
    """True when `replacement` can be applied as is (a pull-request suggestion, a SARIF fix)."""


def _instruction_at(analysis: Analysis, line: int | None) -> DockerfileInstruction | None:
    if line is None:
        return None
    for instruction in analysis.dockerfile.instructions:
        if instruction.line == line:
            return instruction
    return None


def _text_of(instruction: DockerfileInstruction) -> str:
    return f"{instruction.instruction} {instruction.value}".strip()


def _end(instruction: DockerfileInstruction) -> int:
    return max(instruction.end_line, instruction.line)


def _last_command(analysis: Analysis) -> DockerfileInstruction | None:
    """The final CMD or ENTRYPOINT: where USER and HEALTHCHECK go in front of."""
    candidates = [i for i in analysis.dockerfile.instructions if i.instruction in ("CMD", "ENTRYPOINT")]
    return candidates[-1] if candidates else None


def dockerfile_fix(finding: Finding, analysis: Analysis, dockerfile_path: str | None) -> DockerfileFix | None:
    """The Dockerfile change that fixes `finding`, when the finding maps to a line of the real Dockerfile."""
    if not dockerfile_path or analysis.dockerfile.mode != "actual":
        return None
    key = (finding.gate, finding.trigger)
    port = port_of(finding)
    if port is not None:
        expose = _instruction_at(analysis, finding.dockerfile_line) or next(
            (i for i in analysis.dockerfile.instructions if i.instruction == "EXPOSE" and _exposes(i, port)), None
        )
        if expose is None or expose.instruction != "EXPOSE":
            return None
        kept = [p for p in expose.value.split() if _port_number(p) != port]
        if port != 22 and port < 1024 and finding.trigger == "privileged_ports":
            kept.append(f"{8000 + port if port < 100 else 8443}")
            return DockerfileFix(dockerfile_path, expose.line, _end(expose), redact(_text_of(expose)),
                                 "EXPOSE " + " ".join(kept), exact=False)
        return DockerfileFix(dockerfile_path, expose.line, _end(expose), redact(_text_of(expose)),
                             "EXPOSE " + " ".join(kept) if kept else "", exact=True)
    if key in (("dockerfile", "effective_user"), ("image_user", "runs_as_root")):
        user = _instruction_at(analysis, finding.dockerfile_line)
        if user is not None and user.instruction == "USER":
            return DockerfileFix(dockerfile_path, user.line, _end(user), redact(_text_of(user)),
                                 f"USER {NON_ROOT_USER}", exact=True)
        return _insert_before_command(analysis, dockerfile_path, f"USER {NON_ROOT_USER}")
    if key == ("healthcheck", "missing") or (
        key == ("dockerfile", "instruction") and "'HEALTHCHECK' not found" in finding.message
    ):
        return _insert_before_command(analysis, dockerfile_path, 'HEALTHCHECK CMD ["/app/healthcheck"]', exact=False)
    instruction = _instruction_at(analysis, finding.dockerfile_line)
    if instruction is None:
        return None
    if key == ("build_instructions", "add_instead_of_copy") and instruction.instruction == "ADD":
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             f"COPY {instruction.value}", exact=True)
    if key == ("volumes", "sensitive_path") and instruction.instruction == "VOLUME":
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             "", exact=True)
    if is_secret(finding) or finding.gate == "embedded_secrets" or instruction.instruction in ("ENV", "ARG"):
        # The line itself may hold the secret: never quote it, suggest removing it.
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), "", "", exact=False)
    if key == ("dockerfile", "instruction") and instruction.instruction == "FROM":
        if instruction.value.strip().lower().startswith("scratch"):
            return None
        name = instruction.value.split()[0]
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             f"FROM {name}@sha256:<digest of {name}>", exact=False)
    return None


def dockerfile_fixes(findings: Sequence[Finding], analysis: Analysis, dockerfile_path: str | None,
                     exact_only: bool = False) -> list[tuple[DockerfileFix, tuple[Finding, ...]]]:
    """The Dockerfile changes for several findings, one per line: changes of the same line are combined
    (port 22 removed and port 80 moved to 8080 make one new EXPOSE line; USER and HEALTHCHECK are both
    inserted before CMD), so each suggestion can be applied without undoing another. `exact_only` keeps
    only the changes that can be applied as they are (pull-request suggestions)."""
    by_line: dict[int, list[tuple[DockerfileFix, Finding]]] = {}
    for finding in findings:
        fix = dockerfile_fix(finding, analysis, dockerfile_path)
        if fix is not None and (fix.exact or not exact_only):
            by_line.setdefault(fix.start_line, []).append((fix, finding))
    combined = []
    for line in sorted(by_line):
        entries = by_line[line]
        fixes = [fix for fix, _ in entries]
        members = tuple(dict.fromkeys(finding for _, finding in entries))
        if len({fix.replacement for fix in fixes}) == 1:
            combined.append((fixes[0], members))
            continue
        instruction = _instruction_at(analysis, line)
        if instruction is not None and instruction.instruction == "EXPOSE":
            combined.append((_combined_expose(instruction, members, dockerfile_path or "", exact_only), members))
            continue
        inserted: list[str] = []
        for fix in fixes:
            for text in fix.replacement.splitlines()[:-1] if fix.original else []:
                if text not in inserted:
                    inserted.append(text)
        first = fixes[0]
        if first.original and all(f.replacement.endswith(first.original) for f in fixes):
            combined.append((DockerfileFix(first.path, first.start_line, first.end_line, first.original,
                                           "\n".join([*inserted, first.original]),
                                           exact=all(f.exact for f in fixes)), members))
        else:
            combined.extend((fix, (finding,)) for fix, finding in entries)
    return combined


def _combined_expose(expose: DockerfileInstruction, findings: Sequence[Finding], path: str, exact_only: bool = False
                     ) -> DockerfileFix:
    ports = expose.value.split()
    exact = True
    for finding in findings:
        port = port_of(finding)
        if port is None:
            continue
        if port != 22 and port < 1024 and finding.trigger == "privileged_ports":
            if exact_only:
                continue
            replacement = f"{8000 + port if port < 100 else 8443}"
            ports = [replacement if _port_number(p) == port else p for p in ports]
            exact = False
        else:
            ports = [p for p in ports if _port_number(p) != port]
    text = "EXPOSE " + " ".join(dict.fromkeys(ports)) if ports else ""
    return DockerfileFix(path, expose.line, _end(expose), redact(_text_of(expose)), text, exact=exact)


def _exposes(instruction: DockerfileInstruction, port: int) -> bool:
    return any(_port_number(p) == port for p in instruction.value.split())


def _port_number(spec: str) -> int | None:
    head = spec.split("/", 1)[0]
    return int(head) if head.isdigit() else None


def _insert_before_command(analysis: Analysis, path: str, text: str, exact: bool = True) -> DockerfileFix | None:
    command = _last_command(analysis)
    if command is None:
        return None
    original = redact(_text_of(command))
    return DockerfileFix(path, command.line, _end(command), original, f"{text}\n{original}",
                         exact=exact and _end(command) == command.line)
