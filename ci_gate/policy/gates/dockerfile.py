"""dockerfile: checks on the Dockerfile (given, or guessed from the image history).

Messages are anchore-engine's, byte for byte (they feed the md5 trigger ids). Two divergences
close holes (docs/policy.md): `effective_user` with a denied `root` also catches `0`, `0:0`,
`root:root` and any user whose /etc/passwd uid is 0; `exposed_ports` with port `0` in a denylist
denies every port, as documented (anchore-engine compares int 0 to strings and never fires).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ci_gate.policy.gates._common import (
    ACTUAL_DOCKERFILE_ONLY,
    LIST_TYPES,
    dockerfile_available,
    dockerfile_line,
    instructions,
    is_allow,
    is_root_user,
)
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

DIRECTIVES = (
    "ADD",
    "ARG",
    "COPY",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "USER",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "VOLUME",
    "WORKDIR",
)
CONDITIONS = ("=", "!=", "exists", "not_exists", "like", "not_like", "in", "not_in")
_NEEDS_VALUE = ("=", "!=", "like", "not_like", "in", "not_in")


def _operation(check: str, line: str, value: str) -> bool:
    if check == "=":
        return line == value
    if check == "!=":
        return line != value
    if check == "exists":
        return True
    if check == "not_exists":
        return False
    if check == "like":
        return bool(re.match(value, line))
    if check == "not_like":
        return not re.match(value, line)
    items = [item.strip() for item in value.split(",")]
    return line in items if check == "in" else line not in items


def _instruction(call: TriggerInput) -> Iterator[Fired]:
    context = call.context
    if not dockerfile_available(context, call.params.get("actual_dockerfile_only", False)):
        return
    directive = call.params["instruction"]
    check = call.params["check"]
    value = call.params.get("value")
    if check in _NEEDS_VALUE and value is None:
        return
    found = instructions(context, directive)
    for instruction in found:
        line = instruction.value.strip()
        if _operation(check, line, value or ""):
            yield Fired(
                message=f"Dockerfile directive '{directive}' check '{check}' matched against "
                f"'{value if value else ''}' for line '{line}'",
                dockerfile_line=dockerfile_line(context, instruction),
            )
    if check == "not_exists" and not found:
        yield Fired(
            message=f"Dockerfile directive '{directive}' not found, matching condition '{check}' check"
        )


_USER_VALUE = re.compile(r"\s*\[?([^\]]+)\]?\s*")


def _effective_user(call: TriggerInput) -> Iterator[Fired]:
    context = call.context
    if not dockerfile_available(context):
        return
    users = instructions(context, "USER")
    user = "root"
    resolved = user
    line = None
    config_user = context.analysis.config.user.strip()
    if context.analysis.dockerfile.mode.lower() == "guessed" and config_user and not users:
        # Divergence: a history without USER entries (buildkit, other builders) does not make the image
        # run as root; the config's User is the effective user.
        user = resolved = config_user
    elif users:
        match = _USER_VALUE.match(users[-1].value.strip())
        if not match:
            return
        user = resolved = match.group(1)
        line = dockerfile_line(context, users[-1])
        expanded = _USER_VALUE.match(users[-1].expanded.strip()) if users[-1].expanded else None
        if expanded:
            # What the builder makes of `USER ${UID}`: used to recognise root, never in the message.
            resolved = expanded.group(1)
    listed: list[str] = call.params["users"]
    if is_allow(call.params["type"]):
        if user not in listed:
            yield Fired(
                message=f"User {user} found as effective user, which is not on the allowed list",
                dockerfile_line=line,
            )
        return
    denied = user in listed
    # Divergence from anchore-engine: root has many spellings; denying root denies them all.
    if not denied and ("root" in listed or "0" in listed):
        denied = is_root_user(context.analysis, user) or is_root_user(context.analysis, resolved)
    if denied:
        yield Fired(
            message=f"User {user} found as effective user, which is explicity not allowed",
            dockerfile_line=line,
        )


def _exposed_ports(call: TriggerInput) -> Iterator[Fired]:
    context = call.context
    if not dockerfile_available(context, call.params.get("actual_dockerfile_only", False)):
        return
    ports = [str(port) for port in call.params["ports"]]
    allow = is_allow(call.params["type"])
    for instruction in instructions(context, "EXPOSE"):
        exposed = instruction.value.split()
        if not exposed:
            continue
        line = dockerfile_line(context, instruction)
        if not allow:
            if "0" in ports:
                # Divergence: anchore-engine intends "0 = deny any port" but never fires (int vs str).
                yield Fired(
                    message="Dockerfile exposes network ports but policy sets DENIEDPORTS=0: " + str(exposed),
                    dockerfile_line=line,
                )
                continue
            # ci-gate also looks at what the builder made of `EXPOSE ${PORT}` (anchore-engine sees the text).
            expanded = instruction.expanded.split() if instruction.expanded else []
            for port in ports:
                for spelling in (port, port + "/tcp", port + "/udp"):
                    if spelling in exposed or spelling in expanded:
                        yield Fired(
                            message=f"Dockerfile exposes port ({spelling}) which is in policy file "
                            "DENIEDPORTS list",
                            dockerfile_line=line,
                        )
                        break
        else:
            remaining = [
                p
                for p in exposed
                if p not in {s for port in ports for s in (port, port + "/tcp", port + "/udp")}
            ]
            for port in remaining:
                yield Fired(
                    message=f"Dockerfile exposes port ({port}) which is not in policy file ALLOWEDPORTS list",
                    dockerfile_line=line,
                )


def _no_dockerfile(call: TriggerInput) -> Iterator[Fired]:
    if call.context.analysis.dockerfile.mode.lower() != "actual":
        yield Fired(message="Image was not analyzed with an actual Dockerfile")


_TYPE_DESCRIPTION = "How to treat the list: denylist (v1: blacklist) or allowlist (v1: whitelist)."
_LIST_TYPE = ParameterSpec("type", "EnumString", _TYPE_DESCRIPTION, required=True, allowed_values=LIST_TYPES,
                           example="denylist")

GATE = GateSpec(
    name="dockerfile",
    description="Checks against the content of a dockerfile if provided, or a guessed dockerfile based on "
    "docker layer history if the dockerfile is not provided.",
    triggers=(
        TriggerSpec(
            name="instruction",
            description="Triggers if any directives in the list are found to match the described condition "
            "in the dockerfile.",
            evaluate=_instruction,
            parameters=(
                ParameterSpec(
                    "instruction",
                    "EnumString",
                    "The Dockerfile instruction to check.",
                    required=True,
                    allowed_values=DIRECTIVES,
                    example="FROM",
                ),
                ParameterSpec(
                    "check",
                    "EnumString",
                    "The type of check to perform.",
                    required=True,
                    allowed_values=CONDITIONS,
                    example="=",
                ),
                ParameterSpec(
                    "value",
                    "string",
                    "The value to check the dockerfile instruction against "
                    "(needed by =, !=, like, not_like, in, not_in; a rule without it never fires).",
                    example="scratch",
                ),
                ACTUAL_DOCKERFILE_ONLY,
            ),
            # anchore-engine accepts both (the rule then never fires, or errs when evaluated): warnings.
            cross_warnings=lambda raw: (
                (
                    [f"check '{raw['check']}' needs a 'value' parameter; without it the rule never fires"]
                    if raw.get("check") in _NEEDS_VALUE and "value" not in raw
                    else []
                )
                + (
                    [f"'value' is not a valid regular expression for check '{raw['check']}'; the rule reports "
                     "an evaluation error instead of checking anything"]
                    if raw.get("check") in ("like", "not_like") and not _compiles(raw.get("value", ""))
                    else []
                )
            ),
        ),
        TriggerSpec(
            name="effective_user",
            description="Checks if the effective user matches the provided user names, either as a "
            "whitelist or blacklist depending on the type parameter setting. ci-gate: a denied root also "
            "denies 0, 0:0, root:root and any user whose uid is 0.",
            evaluate=_effective_user,
            parameters=(
                ParameterSpec(
                    "users",
                    "CommaDelimitedStringList",
                    "User names to check against as the "
                    "effective user (last user entry) in the images history.",
                    required=True,
                    example="root,docker",
                ),
                _LIST_TYPE,
            ),
        ),
        TriggerSpec(
            name="exposed_ports",
            description="Evaluates the set of ports exposed. Allows configuring whitelist or blacklist "
            "behavior. If type=whitelist, then any ports found exposed that are not in the list will cause "
            "the trigger to fire. If type=blacklist, then any ports exposed that are in the list will cause "
            "the trigger to fire. ci-gate: port 0 in a denylist denies every port.",
            evaluate=_exposed_ports,
            parameters=(
                ParameterSpec(
                    "ports",
                    "CommaDelimitedNumberList",
                    "List of port numbers.",
                    required=True,
                    example="80,8080,8088",
                ),
                _LIST_TYPE,
                ACTUAL_DOCKERFILE_ONLY,
            ),
        ),
        TriggerSpec(
            name="no_dockerfile_provided",
            description="Triggers if anchore analysis was performed without supplying the actual image "
            "Dockerfile.",
            evaluate=_no_dockerfile,
        ),
    ),
)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
