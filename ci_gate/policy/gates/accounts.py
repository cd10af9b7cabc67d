"""accounts (ci-gate extension): /etc/passwd hygiene (Dockle DKL-LI-0001/0002)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger, passwd_entries
from ci_gate.policy.gates.interface import Fired, TriggerInput


def _duplicate_uids(call: TriggerInput) -> Iterator[Fired]:
    entries = passwd_entries(call.context) or {}
    owners: dict[str, list[str]] = {}
    for user, fields in entries.items():
        if len(fields) > 1:
            owners.setdefault(fields[1], []).append(user)
    for uid, users in owners.items():
        if len(users) > 1:
            yield Fired(
                message=f"uid {uid} is shared by users {', '.join(users)} in /etc/passwd", path="/etc/passwd"
            )


def _empty_password(call: TriggerInput) -> Iterator[Fired]:
    entries = passwd_entries(call.context) or {}
    for user, fields in entries.items():
        if fields and fields[0] == "":
            yield Fired(message=f"User {user} has an empty password field in /etc/passwd", path="/etc/passwd")


GATE = extension_gate(
    "accounts",
    "ci-gate extension: user accounts in /etc/passwd.",
    extension_trigger("duplicate_uids", "Triggers for each uid shared by several users.", _duplicate_uids),
    extension_trigger(
        "empty_password",
        "Triggers for each user whose /etc/passwd password field is empty (login without a password).",
        _empty_password,
    ),
)
