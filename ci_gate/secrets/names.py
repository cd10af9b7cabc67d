"""Which environment-variable (or label, or build-arg) names look like they hold a secret.

One heuristic, used both by the secret scanner (a secret-looking name with a non-empty value is a
finding) and by the image-config reader (such values are redacted before they reach any report).
Dockle's CIS-DI-0010 flags any name containing KEY or ACCESS and broke hundreds of pipelines
(goodwithtech/dockle#159, #130 for *_GPG_KEY); this one looks for whole name parts instead.
"""

from __future__ import annotations

import re

SECRET_NAME_REGEX = (
    r"(?i)(?:^|.*[_.\-])(?:PASSWORD|PASSWD|PASSPHRASE|PASS|PWD|SECRETS?|TOKENS?|APIKEY|CREDENTIALS?"
    r"|(?:API|ACCESS|SECRET|PRIVATE|AUTH|ENCRYPTION|SIGNING|MASTER|CLIENT)[_.\-]?KEY)(?:$|[_.\-].*)"
)
"""A name whose parts (split on `_`, `.` or `-`) include a secret word, e.g. DB_PASSWORD, GITHUB_TOKEN."""

_SEPARATOR = re.compile(r"[_.\-]")
_SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PASSPHRASE", "PASS", "PWD", "SECRET", "SECRETS", "TOKEN", "TOKENS", "APIKEY"}
    | {"CREDENTIAL", "CREDENTIALS"}
)
_KEY_OWNERS = frozenset({"API", "ACCESS", "SECRET", "PRIVATE", "AUTH", "ENCRYPTION", "SIGNING", "MASTER", "CLIENT"})
_OWNED_KEYS = frozenset(owner + "KEY" for owner in _KEY_OWNERS)
_LOCATIONS = frozenset({"FILE", "PATH", "DIR", "FILES", "PATHS", "DIRS"})


def is_secret_name(name: str) -> bool:
    """True when a variable named `name` probably holds a secret (DB_PASSWORD, NPM_TOKEN, API_KEY).

    Decides what SECRET_NAME_REGEX says, minus the exceptions, by splitting the name into parts:
    linear time whatever a hostile image puts in a name.
    """
    upper = name.upper()
    if upper in ("PWD", "OLDPWD") or "\n" in name:
        return False  # the shell's working directories
    parts = _SEPARATOR.split(upper)
    last = parts[-1]
    # *_FILE/_PATH/_DIR hold where a secret lives (the Docker secrets convention, e.g.
    # POSTGRES_PASSWORD_FILE), not the secret itself.
    if len(parts) > 1 and last in _LOCATIONS:
        return False
    # A GPG key id (GPG_KEY, PYTHON_GPG_KEYS) and a public key are public.
    if last in ("GPGKEY", "GPGKEYS") or (len(parts) > 1 and parts[-2] == "GPG" and last in ("KEY", "KEYS")):
        return False
    following = [*parts[1:], ""]
    if any(
        part.startswith("PUBLICKEY") or (part == "PUBLIC" and after.startswith("KEY"))
        for part, after in zip(parts, following, strict=True)
    ):
        return False
    return any(
        part in _SECRET_WORDS or part in _OWNED_KEYS or (part in _KEY_OWNERS and after == "KEY")
        for part, after in zip(parts, following, strict=True)
    )
