"""passwd_file: content checks on /etc/passwd (user names, ids, shells, whole entries).

Messages are anchore-engine's, `pentry=` included: a passwd entry is no secret. The one exception
is an entry that carries a password hash in its second field (instead of `x` and /etc/shadow):
the message shown replaces only that field with `****`; the trigger id hashes the engine's message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ci_gate.policy.gates._common import passwd_entries
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec


def _matches(call: TriggerInput, items: set[str], index: int | None) -> Iterator[tuple[str, str]]:
    """anchore-engine's exec_blacklist: (matched candidate, whole entry); -1 = name, None = whole entry."""
    entries = passwd_entries(call.context)
    if not entries:
        return
    for user, fields in entries.items():
        if index is None:
            candidate = ":".join([user, *fields])
        elif index > 0:
            if index >= len(fields):
                continue
            candidate = fields[index]
        else:
            candidate = user
        if candidate in items:
            yield candidate, ":".join([user, *fields])


_NO_PASSWORD = re.compile(r"^(x|\*|!|!!|!\*|\*LK\*|\*NP\*|)$")
"""Second passwd fields that hold no password hash: `x` (see /etc/shadow), locked markers, empty."""


def _fired(message: str, entry: str) -> Fired:
    """A passwd finding; a password hash in the entry is masked in the message shown."""
    fields = entry.split(":")
    if len(fields) > 1 and not _NO_PASSWORD.match(fields[1]):
        masked = ":".join([fields[0], "****", *fields[2:]])
        return Fired(message=message, shown_message=message.replace(entry, masked), path="/etc/passwd")
    return Fired(message=message, path="/etc/passwd")


def _not_available(call: TriggerInput) -> Iterator[Fired]:
    if not passwd_entries(call.context):
        yield Fired(
            message="Cannot locate /etc/passwd in image stored files archive: check analyzer settings."
        )


def _denylist(name: str, what: str, index: int | None, description: str, parameter: str, parameter_type: str,
              parameter_description: str, example: str, aliases: tuple[str, ...] = (),
              parameter_aliases: tuple[str, ...] = ()) -> TriggerSpec:
    """A denylist trigger: fires for each passwd entry whose field `index` (-1 the user name, None
    the whole entry) is one of the values of its one required parameter, with anchore-engine's
    message for `what`. anchore-engine's v1 name (`blacklist_…`) and any other `aliases` are accepted."""

    def evaluate(call: TriggerInput) -> Iterator[Fired]:
        value = call.params[parameter]
        denied = {value.strip()} if isinstance(value, str) else {str(item) for item in value}
        for matched, entry in _matches(call, denied, index):
            yield _fired(f"Blacklisted {what} '{matched}' found in image's /etc/passwd: pentry={entry}", entry)

    return TriggerSpec(
        name=name,
        aliases=(name.replace("denylist_", "blacklist_", 1), *aliases),
        description=description,
        evaluate=evaluate,
        parameters=(ParameterSpec(parameter, parameter_type, parameter_description, required=True,
                                  aliases=parameter_aliases, example=example),),
    )


GATE = GateSpec(
    name="passwd_file",
    description="Content checks for /etc/passwd for things like usernames, group ids, shells, or full entries.",
    triggers=(
        TriggerSpec(
            name="content_not_available",
            description="Triggers if the /etc/passwd file is not present/stored in the evaluated image.",
            evaluate=_not_available,
        ),
        _denylist("denylist_usernames", "user", -1, "Triggers if specified username is found in the /etc/passwd file",
                  "user_names", "CommaDelimitedStringList",
                  "List of usernames that will cause the trigger to fire if found in /etc/passwd.", "daemon,ftp",
                  parameter_aliases=("usernameblacklist",)),
        _denylist("denylist_userids", "uid", 1, "Triggers if specified user id is found in the /etc/passwd file",
                  "user_ids", "CommaDelimitedNumberList",
                  "List of userids (numeric) that will cause the trigger to fire if found in /etc/passwd.", "0,1",
                  parameter_aliases=("useridblacklist",)),
        _denylist("denylist_groupids", "gid", 2, "Triggers if specified group id is found in the /etc/passwd file",
                  "group_ids", "CommaDelimitedNumberList",
                  "List of groupids (numeric) that will cause the trigger to fire if found in /etc/passwd.",
                  "999,20"),
        _denylist("denylist_shells", "shell", 5,
                  "Triggers if specified login shell for any user is found in the /etc/passwd file",
                  "shells", "CommaDelimitedStringList", "List of shell commands to deny.", "/bin/bash,/bin/zsh",
                  aliases=("shellmatch",)),
        _denylist("denylist_full_entry", "pentry", None,
                  "Triggers if entire specified passwd entry is found in the /etc/passwd file.",
                  "entry", "string", "Full entry to match in /etc/passwd.",
                  "ftp:x:14:50:FTP User:/var/ftp:/sbin/nologin"),
    ),
)
