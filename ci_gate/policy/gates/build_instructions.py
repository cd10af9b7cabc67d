"""build_instructions (ci-gate extension): how the image was built (DISA CIDG 2.4, CIS 4.7/4.9, Dockle).

Reads the real Dockerfile when given, else the image history, so it works on any image. Findings
in steps of the base image carry origin `base`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ci_gate.policy.gates._common import BuildStep, build_steps, extension_gate, extension_trigger
from ci_gate.policy.gates.interface import EvaluationContext, Fired, TriggerInput

_URL = re.compile(r"(?<![\w-])(https?|ftp)://\S+", re.IGNORECASE)
_FETCH = re.compile(r"\b(curl|wget)\b")
_PIPE_TO_SHELL = re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+(-\S+\s+)*)?(/usr)?(/bin/)?(ba|da|z|k)?sh\b")
_UPDATE = re.compile(
    r"\b(apt-get|apt)\s+(-\S+\s+)*update\b|\bapk\s+update\b|\b(yum|dnf|microdnf)\s+(-\S+\s+)*makecache\b"
)
_INSTALL = re.compile(
    r"\b(apt-get|apt|yum|dnf|microdnf|zypper)\s+(-\S+\s+)*(install|upgrade|dist-upgrade)\b|\bapk\s+(add|upgrade)\b"
)
_SUDO = re.compile(r"(^|[;&|\s])sudo(\s|$)")
_BASE_ROOTFS_ADD = re.compile(r"^file:[0-9a-f]+ in /\s*$")


def _steps(context: EvaluationContext) -> list[BuildStep]:
    return context.memo("build.steps", lambda: build_steps(context.analysis))


def _where(step: BuildStep) -> str:
    if step.dockerfile_line is not None:
        return f"Dockerfile line {step.dockerfile_line}"
    return f"history entry {step.history_index}"


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fired(step: BuildStep, message: str) -> Fired:
    return Fired(message=message, dockerfile_line=step.dockerfile_line, layer_index=step.layer_index)


def _add_remote_url(call: TriggerInput) -> Iterator[Fired]:
    for step in _steps(call.context):
        if step.keyword == "ADD":
            match = _URL.search(step.text)
            if match:
                yield _fired(step, f"ADD fetches a remote URL at {_where(step)}: {_short(match.group(0))}")


def _runs(call: TriggerInput, matches: Callable[[str], bool], does: str) -> Iterator[Fired]:
    """One fire per RUN step whose text `matches`: 'RUN <does> at <where>: <the step>'."""
    for step in _steps(call.context):
        if step.keyword == "RUN" and matches(step.text):
            yield _fired(step, f"RUN {does} at {_where(step)}: {_short(step.text)}")


def _pipe_to_shell(call: TriggerInput) -> Iterator[Fired]:
    return _runs(call, lambda text: bool(_PIPE_TO_SHELL.search(text)), "pipes a download into a shell")


def _remote_fetch(call: TriggerInput) -> Iterator[Fired]:
    return _runs(call, lambda text: bool(_FETCH.search(text) and _URL.search(text)), "downloads during the build")


def _update_alone(call: TriggerInput) -> Iterator[Fired]:
    return _runs(call, lambda text: bool(_UPDATE.search(text)) and not _INSTALL.search(text),
                 "updates the package index without installing in the same step")


def _sudo(call: TriggerInput) -> Iterator[Fired]:
    return _runs(call, lambda text: bool(_SUDO.search(text)), "uses sudo")


def _add_instead_of_copy(call: TriggerInput) -> Iterator[Fired]:
    for step in _steps(call.context):
        if step.keyword != "ADD" or _URL.search(step.text):
            continue
        # The base image's root filesystem (`ADD file:<hash> in /`) is how every base is made.
        if step.dockerfile_line is None and _BASE_ROOTFS_ADD.match(step.text):
            continue
        yield _fired(step, f"ADD used where COPY would do at {_where(step)}: {_short(step.text)}")


GATE = extension_gate(
    "build_instructions",
    "ci-gate extension: the build steps (the Dockerfile when given, else the image history).",
    extension_trigger(
        "add_remote_url",
        "Triggers for an ADD of a remote URL (builds must not fetch from the internet; DISA CIDG 2.4).",
        _add_remote_url,
    ),
    extension_trigger("pipe_to_shell", "Triggers for a RUN that pipes curl/wget output into a shell.", _pipe_to_shell),
    extension_trigger(
        "remote_fetch",
        "Triggers for a RUN that downloads with curl/wget (Iron Bank: builds run offline).",
        _remote_fetch,
    ),
    extension_trigger(
        "update_alone",
        "Triggers for a RUN that updates the package index without installing in the same step (CIS 4.7, Dockle "
        "CIS-DI-0007).",
        _update_alone,
    ),
    extension_trigger("sudo", "Triggers for a RUN that uses sudo (Dockle DKL-DI-0001).", _sudo),
    extension_trigger(
        "add_instead_of_copy",
        "Triggers for an ADD of local content where COPY would do (CIS 4.9, Dockle CIS-DI-0009); the base image's "
        "root filesystem ADD is ignored.",
        _add_instead_of_copy,
    ),
)
