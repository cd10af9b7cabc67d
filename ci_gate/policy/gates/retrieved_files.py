"""retrieved_files: presence and content of files the analysis kept (by default /etc/passwd)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

_PATH = ParameterSpec(
    "path",
    "string",
    "The path of the file to verify has been retrieved during analysis",
    required=True,
    example="/etc/httpd.conf",
)


def _not_available(call: TriggerInput) -> Iterator[Fired]:
    # anchore-engine fires twice (same id) when nothing at all was retrieved; one instance is enough.
    if call.params["path"] not in call.context.analysis.retrieved_files:
        yield Fired(message="Cannot locate file in the image analysis", path=call.params["path"])


def _content_regex(call: TriggerInput) -> Iterator[Fired]:
    path = call.params["path"]
    content = call.context.analysis.retrieved_files.get(path)
    if content is None:
        return
    pattern = re.compile(call.params["regex"])
    found = any(pattern.match(word) for word in content.split())
    if found == (call.params["check"] == "match"):
        yield Fired(
            message=f"Content regex '{call.params['regex']}' check '{call.params['check']}' found in retrieved "
            f"file '{path}'",
            instance_id=f"{call.rule_id}+file://{path}",
            path=path,
        )


GATE = GateSpec(
    name="retrieved_files",
    description="Checks against content and/or presence of files retrieved at analysis time from an image",
    triggers=(
        TriggerSpec(
            name="content_not_available",
            description="Triggers if the specified file is not present/stored in the evaluated image.",
            evaluate=_not_available,
            parameters=(_PATH,),
        ),
        TriggerSpec(
            name="content_regex",
            description="Evaluation of regex on retrieved file content",
            evaluate=_content_regex,
            parameters=(
                _PATH,
                ParameterSpec(
                    "regex",
                    "string",
                    "The regex to evaluate against the content of the file",
                    required=True,
                    example=".*SSlEnabled.*",
                    is_regex=True,
                ),
                ParameterSpec(
                    "check",
                    "EnumString",
                    "The type of check to perform with the regex",
                    required=True,
                    allowed_values=("match", "no_match"),
                    example="match",
                ),
            ),
        ),
    ),
)
