"""Name the license in a LICENSE file by its text, for the common licenses, as syft's scanner would.

syft runs Google's licensecheck over license files and accepts a result when the recognised
license text covers at least 75% of the file. We recognise the common texts by phrases only they
contain, and estimate coverage from the usual length of each text (whitespace collapsed), so a file
that merely mentions a license among other prose is not taken for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COVERAGE_THRESHOLD = 0.75

LICENSE_FILE_NAMES = (
    "AL2.0", "COPYING", "COPYING.md", "COPYING.markdown", "COPYING.txt", "LGPL2.1", "LICENCE",
    "LICENCE.md", "LICENCE.markdown", "licence.txt", "LICENCE.txt", "LICENSE", "LICENSE.md",
    "LICENSE.markdown", "LICENSE.txt", "LICENSE-2.0.txt", "LICENCE-2.0.txt", "LICENSE-APACHE",
    "LICENCE-APACHE", "LICENSE-APACHE-2.0.txt", "LICENCE-APACHE-2.0.txt", "LICENSE-MIT", "LICENCE-MIT",
    "LICENSE.MIT", "LICENCE.MIT", "LICENSE.code", "LICENCE.code", "LICENSE.docs", "LICENCE.docs",
    "LICENSE.rst", "LICENCE.rst", "MIT-LICENSE", "MIT-LICENCE", "MIT-LICENSE.md", "MIT-LICENCE.md",
    "MIT-LICENSE.markdown", "MIT-LICENCE.markdown", "MIT-LICENSE.txt", "MIT-LICENCE.txt", "MIT_LICENSE",
    "MIT_LICENCE", "UNLICENSE", "UNLICENCE",
)
"""The license file names syft looks for (pkgsite's list), matched without regard to case."""


@dataclass(frozen=True, slots=True)
class _KnownText:
    license_id: str
    phrases: tuple[str, ...]
    """All must appear (lower case, whitespace collapsed)."""
    length: int
    """The usual length of the text, whitespace collapsed (a notice with its copyright line)."""
    absent: tuple[str, ...] = ()
    """None of these may appear (tells BSD-2-Clause from BSD-3-Clause)."""


_KNOWN_TEXTS = (
    _KnownText("Apache-2.0", ("apache license", "version 2.0, january 2004",
                              "terms and conditions for use, reproduction, and distribution"), 10_200),
    _KnownText("Apache-2.0", ("licensed under the apache license, version 2.0",
                              "you may not use this file except in compliance with the license"), 600),
    _KnownText("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",
                       "the above copyright notice and this permission notice shall be included"), 1_020),
    _KnownText("BSD-3-Clause", ("redistribution and use in source and binary forms",
                                "neither the name of"), 1_400),
    _KnownText("BSD-2-Clause", ("redistribution and use in source and binary forms",
                                "this list of conditions and the following disclaimer"), 1_200,
               absent=("neither the name of",)),
    _KnownText("EPL-2.0", ("eclipse public license - v 2.0",), 12_600),
    _KnownText("EPL-1.0", ("eclipse public license - v 1.0",), 10_600),
)
_SPACE = re.compile(r"\s+")
_COMMENT_MARKS = re.compile(r"(^|\s)(/\*+|\*+/|\*|#|//)(?=\s|$)")


def identify_licenses(text: str) -> list[str]:
    """SPDX ids of the licenses whose text makes up most of `text`; [] when none does."""
    normalized = _SPACE.sub(" ", _COMMENT_MARKS.sub(" ", text)).strip().lower()
    if not normalized:
        return []
    found: list[str] = []
    covered = 0
    for known in _KNOWN_TEXTS:
        if known.license_id in found:
            continue
        if all(phrase in normalized for phrase in known.phrases) and not any(
                phrase in normalized for phrase in known.absent):
            found.append(known.license_id)
            covered += known.length
    if not found or covered / len(normalized) < COVERAGE_THRESHOLD:
        return []
    return found
