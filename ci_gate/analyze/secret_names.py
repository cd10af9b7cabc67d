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

_SECRET_NAME = re.compile(SECRET_NAME_REGEX)

_NOT_SECRET_NAME = re.compile(
    # PWD/OLDPWD are the shell's working directories; *_FILE/_PATH/_DIR hold where a secret lives
    # (the Docker secrets convention, e.g. POSTGRES_PASSWORD_FILE), not the secret itself; a GPG key
    # id (GPG_KEY, *_GPG_KEYS) is public.
    r"(?i)^(?:OLD)?PWD$|.*[_.\-](?:FILE|PATH|DIR|FILES|PATHS|DIRS)$|(?:^|.*[_.\-])GPG[_.\-]?KEYS?$"
    r"|(?:^|.*[_.\-])PUBLIC[_.\-]?KEY.*"
)


def is_secret_name(name: str) -> bool:
    """True when a variable named `name` probably holds a secret (DB_PASSWORD, NPM_TOKEN, API_KEY)."""
    return bool(_SECRET_NAME.fullmatch(name)) and not _NOT_SECRET_NAME.fullmatch(name)
