"""License names as SBOM formats want them: SPDX identifiers where a name is one, else kept as a name."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

_EXPRESSION_OPERATOR = re.compile(r"\s(AND|OR|WITH)\s", re.IGNORECASE)
_GNU_SHORT = re.compile(r"^(A|L|)GPL-?(\d)(?:\.(\d))?(\+)?$", re.IGNORECASE)
_LICENSE_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


@functools.lru_cache(maxsize=1)
def _identifiers() -> dict[str, str]:
    """lower-case identifier → identifier, from the SPDX License List shipped with ci-gate."""
    text = resources.files("ci_gate.sbom").joinpath("spdx_license_ids.json").read_text(encoding="utf-8")
    return {str(identifier).lower(): str(identifier) for identifier in json.loads(text)["identifiers"]}


def spdx_identifier(name: str) -> str | None:
    """The SPDX identifier a license name stands for (`mit` → MIT, `GPL-2+` → GPL-2.0-or-later,
    Debian's `LGPL-2.1` → LGPL-2.1-only), or None when it is not one."""
    known = _identifiers()
    cleaned = name.strip()
    if cleaned.lower() in known:
        found = known[cleaned.lower()]
        # The bare GNU names (GPL-2.0, LGPL-2.1) are deprecated ids; prefer the explicit form.
        gnu = _GNU_SHORT.match(found)
        return _gnu(gnu) or found if gnu else found
    gnu = _GNU_SHORT.match(cleaned)
    return _gnu(gnu) if gnu else None


def _gnu(match: re.Match[str]) -> str | None:
    prefix, major, minor, plus = match.groups()
    candidate = f"{prefix.upper()}GPL-{major}.{minor or '0'}-{'or-later' if plus else 'only'}"
    return _identifiers().get(candidate.lower())


def is_expression(text: str) -> bool:
    """Whether a license string is an SPDX expression of several licenses (`MIT OR Apache-2.0`)."""
    return bool(_EXPRESSION_OPERATOR.search(text))


def expression_of_identifiers(text: str) -> str | None:
    """The expression with every license replaced by its SPDX id, or None when one is not an id."""
    tokens = re.split(r"(\s+|\(|\))", text.strip())
    result = []
    for token in tokens:
        if not token or token.isspace() or token in "()":
            result.append(token)
        elif token.upper() in ("AND", "OR", "WITH"):
            result.append(token.upper())
        else:
            identifier = spdx_identifier(token)
            if identifier is None:
                return None
            result.append(identifier)
    return "".join(result)


def license_ref(name: str) -> str:
    """A `LicenseRef-` id for a license that has no SPDX identifier (SPDX's rule: letters, digits, `.-`)."""
    return "LicenseRef-" + (_LICENSE_REF_UNSAFE.sub("-", name).strip("-") or "unknown")
