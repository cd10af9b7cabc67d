"""Helpers several gates share: the Dockerfile view, build steps, users, version comparison.

Versions are ordered by `ci_gate.vulns.versions`, the comparators the vulnerability matcher uses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ci_gate.model import Analysis, DockerfileInstruction, Package
from ci_gate.policy.gates.interface import (
    EVALUATION_ERROR_ID,
    EvaluationContext,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerFunction,
    TriggerSpec,
)
from ci_gate.vulns.versions import comparator

ACTUAL_DOCKERFILE_ONLY = ParameterSpec(
    name="actual_dockerfile_only",
    type="BooleanString",
    description="Only evaluate against a user-provided dockerfile, skip evaluation on inferred/guessed "
    "dockerfiles. Default is False.",
    example="true",
    default="false",
)

LIST_TYPES = ("denylist", "allowlist", "blacklist", "whitelist")
"""The `type` values of list triggers: the v2 spellings and anchore-engine's v1 spellings."""


def extension_gate(name: str, description: str, *triggers: TriggerSpec) -> GateSpec:
    """A ci-gate gate that Anchore does not have: documents using it are not portable to Anchore."""
    return GateSpec(name=name, description=description, triggers=triggers, extension=True)


def extension_trigger(
    name: str, description: str, evaluate: TriggerFunction, *parameters: ParameterSpec
) -> TriggerSpec:
    """A trigger of a ci-gate extension gate (Anchore has no trigger of that name)."""
    return TriggerSpec(name=name, description=description, evaluate=evaluate, parameters=parameters, extension=True)


def name_version_denylist(name: str, description: str, evaluate: TriggerFunction, name_help: str, name_example: str,
                          version_help: str, version_example: str) -> TriggerSpec:
    """A trigger that denies a package by name, or only one version of it (packages, npms, ruby_gems);
    anchore-engine's v1 spelling of its name (`blacklist…` for `denylist…`) is accepted too."""
    return TriggerSpec(
        name=name,
        aliases=(name.replace("denylist", "blacklist", 1),),
        description=description,
        evaluate=evaluate,
        parameters=(
            ParameterSpec("name", "string", name_help, required=True, example=name_example),
            ParameterSpec("version", "string", version_help, example=version_example),
        ),
    )


def is_allow(list_type: str) -> bool:
    return list_type.lower() in ("allowlist", "whitelist")


def dockerfile_available(context: EvaluationContext, actual_only: bool = False) -> bool:
    """Whether the dockerfile gate runs: a Dockerfile (actual, or guessed unless actual_only) exists."""
    mode = context.analysis.dockerfile.mode.lower()
    if mode in ("", "unknown"):
        return False
    return not (actual_only and mode != "actual")


def instructions(context: EvaluationContext, keyword: str) -> list[DockerfileInstruction]:
    """The final stage's instructions with this keyword, in order."""
    index: dict[str, list[DockerfileInstruction]] = context.memo("dockerfile.index", lambda: _index(context))
    return index.get(keyword.upper(), [])


def _index(context: EvaluationContext) -> dict[str, list[DockerfileInstruction]]:
    result: dict[str, list[DockerfileInstruction]] = {}
    for instruction in context.analysis.dockerfile.instructions:
        result.setdefault(instruction.instruction.upper(), []).append(instruction)
    return result


def dockerfile_line(context: EvaluationContext, instruction: DockerfileInstruction) -> int | None:
    """The Dockerfile line, only when it is a real Dockerfile (a guessed one numbers history entries)."""
    return instruction.line if context.analysis.dockerfile.mode.lower() == "actual" else None


@dataclass(frozen=True)
class BuildStep:
    """One build step: a Dockerfile instruction (actual mode) or a history entry."""

    keyword: str
    """Upper-case instruction (RUN, ADD, ...), or "" when the history entry is not recognisable."""
    text: str
    """What follows the keyword."""
    dockerfile_line: int | None
    layer_index: int | None
    history_index: int | None


_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
_SHELL = re.compile(r"^(/bin/(ba)?sh|sh) -c\s+")
_BUILDKIT_SHELL = re.compile(r"^\|\d+ ")


def build_steps(analysis: Analysis) -> list[BuildStep]:
    """The steps that built the image: the real Dockerfile when given, else the config history."""
    if analysis.dockerfile.mode.lower() == "actual":
        return [
            BuildStep(i.instruction.upper(), i.value, i.line, None, None)
            for i in analysis.dockerfile.instructions
        ]
    steps = []
    for index, entry in enumerate(analysis.identity.history):
        keyword, text = split_history(entry.created_by)
        steps.append(BuildStep(keyword, text, None, entry.layer_index, index))
    return steps


def split_history(created_by: str) -> tuple[str, str]:
    """`/bin/sh -c #(nop)  EXPOSE 22` → (EXPOSE, 22); `RUN /bin/sh -c apt-get ...` → (RUN, apt-get ...)."""
    text = created_by.strip()
    if _NOP.match(text):
        text = _NOP.sub("", text)
        keyword, _, rest = text.partition(" ")
        return keyword.upper(), rest.strip()
    if _SHELL.match(text):
        return "RUN", _SHELL.sub("", text)
    keyword, _, rest = text.partition(" ")
    if keyword.upper() in (
        "RUN",
        "ADD",
        "COPY",
        "ENV",
        "LABEL",
        "USER",
        "EXPOSE",
        "ARG",
        "WORKDIR",
        "CMD",
        "ENTRYPOINT",
        "HEALTHCHECK",
        "VOLUME",
        "SHELL",
        "STOPSIGNAL",
        "ONBUILD",
    ):
        rest = rest.strip()
        if keyword.upper() == "RUN":
            rest = _BUILDKIT_SHELL.sub("", rest)
            rest = _SHELL.sub("", rest)
        return keyword.upper(), rest
    return "", text


def layer_of_history(analysis: Analysis, history_index: int | None) -> int | None:
    if history_index is None or history_index >= len(analysis.identity.history):
        return None
    return analysis.identity.history[history_index].layer_index


def passwd_entries(context: EvaluationContext) -> dict[str, list[str]] | None:
    """/etc/passwd as anchore-engine reads it: username → the other fields; None when not available."""
    return context.memo("passwd.entries", lambda: _passwd_entries(context.analysis))


def _passwd_entries(analysis: Analysis) -> dict[str, list[str]] | None:
    content = analysis.retrieved_files.get("/etc/passwd")
    if content is None:
        if not analysis.users:
            return None
        content = "\n".join(user.line for user in analysis.users if user.line)
    entries: dict[str, list[str]] = {}
    for line in content.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = line.split(":")
        entries[fields[0]] = fields[1:]
    return entries or None


def uid_of(analysis: Analysis, user: str) -> int | None:
    """The numeric uid of a USER value (`name`, `uid`, `name:group`, `uid:gid`), via /etc/passwd."""
    name = user.split(":", 1)[0].strip()
    if name.isdigit():
        return int(name)
    for entry in analysis.users:
        if entry.name == name:
            return entry.uid
    return None


def is_root_user(analysis: Analysis, user: str) -> bool:
    """True for every spelling of root: empty, `root`, `0`, `0:0`, `root:root`, or a name whose uid is 0."""
    name = user.split(":", 1)[0].strip()
    if name in ("", "root", "0"):
        return True
    return uid_of(analysis, name) == 0


def packages_by_name(context: EvaluationContext) -> dict[str, list[Package]]:
    """An index of the image's packages by name, built once per evaluation."""

    def build() -> dict[str, list[Package]]:
        index: dict[str, list[Package]] = {}
        for package in context.analysis.packages:
            index.setdefault(package.name, []).append(package)
        return index

    return context.memo("packages.by_name", build)


class CannotCompareVersions(ValueError):
    """Two versions the package type's scheme cannot order: the trigger reports it, it never passes."""


def compare_versions(scheme: str | None, left: str, right: str) -> int:
    """-1, 0 or 1 under a `vulns.versions` scheme (dpkg, apk, rpm, pep440, maven, ...).

    CannotCompareVersions when there is no scheme, or one of the versions is not one of its versions."""
    if scheme is None:
        raise CannotCompareVersions(f"no version ordering is known for {left!r} and {right!r}")
    try:
        return comparator(scheme)(left, right)
    except ValueError as error:
        raise CannotCompareVersions(f"{left!r} and {right!r} cannot be compared as {scheme} versions: "
                                    f"{error}") from None


def could_not_compare(gate: str, trigger: str, error: CannotCompareVersions) -> Fired:
    """The finding of a trigger whose versions could not be ordered (an evaluation error, as for bad input)."""
    return Fired(message=f"Could not evaluate trigger {gate}/{trigger}: {error}", instance_id=EVALUATION_ERROR_ID)
