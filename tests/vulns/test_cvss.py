"""CVSS scores: published examples, and the whole v3 space and a v4 sample against the `cvss` library.

The `cvss` package (Red Hat Product Security) is the implementation FIRST's v4 reference data is
generated from; it is used here only as an independent oracle.
"""

from __future__ import annotations

import itertools
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from cvss import CVSS3, CVSS4

from ci_gate.vulns.cvss import score_vector, severity_for_score

KNOWN = [
    # (vector, base score) from NVD / the specifications' examples
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),  # e.g. CVE-2021-44228 is 10.0 with S:C
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),  # CVE-2021-44228 (Log4Shell)
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),  # CVE-2014-0160 (Heartbleed, NVD v3)
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),  # CVE-2021-4034 (PwnKit)
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # the classic reflected XSS score
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 10.0),
    ("CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.3),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0),
    ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
    ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
]


def _one(value: Decimal) -> float:
    """NVD publishes sub-scores rounded half up to one decimal."""
    return float(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(("vector", "expected"), KNOWN)
def test_known_vectors(vector: str, expected: float) -> None:
    assert score_vector(vector).base_score == expected


def test_every_v3_base_vector_matches_the_reference_library() -> None:
    choices = [("AV", "NALP"), ("AC", "LH"), ("PR", "NLH"), ("UI", "NR"), ("S", "UC"),
               ("C", "HLN"), ("I", "HLN"), ("A", "HLN")]
    mismatches = []
    for version in ("3.0", "3.1"):
        for values in itertools.product(*(options for _, options in choices)):
            pairs = zip(choices, values, strict=True)
            vector = f"CVSS:{version}/" + "/".join(f"{n}:{v}" for (n, _), v in pairs)
            ours = score_vector(vector)
            reference = CVSS3(vector)
            if ours.base_score != float(reference.base_score):
                mismatches.append((vector, ours.base_score, reference.base_score))
            expected = (_one(reference.esc), max(_one(reference.isc), 0.0))
            if (ours.exploitability_score, ours.impact_score) != expected:
                mismatches.append((vector, "subscores", ours, reference.esc, reference.isc))
    assert mismatches == []


def test_v4_sample_matches_the_reference_library() -> None:
    base = [("AV", "NALP"), ("AC", "LH"), ("AT", "NP"), ("PR", "NLH"), ("UI", "NPA"), ("VC", "HLN"),
            ("VI", "HLN"), ("VA", "HLN"), ("SC", "HLN"), ("SI", "HLN"), ("SA", "HLN")]
    extra = [("E", "XAPU"), ("CR", "XHML"), ("IR", "XHML"), ("AR", "XHML"),
             ("MSI", "XSHLN"), ("MSA", "XSHLN")]
    generator = random.Random(20240101)
    mismatches = []
    for round_number in range(4000):
        parts = [f"{name}:{generator.choice(options)}" for name, options in base]
        if round_number % 2:
            parts += [f"{name}:{generator.choice(options)}" for name, options in extra]
        vector = "CVSS:4.0/" + "/".join(parts)
        ours = score_vector(vector).base_score
        reference = float(CVSS4(vector).base_score)
        if ours != reference:
            mismatches.append((vector, ours, reference))
    assert mismatches == []


@pytest.mark.parametrize("bad", ["CVSS:3.1/AV:N/AC:L", "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                 "CVSS:4.0/AV:N", "nonsense", "CVSS:3.1/AV:N/AV:N"])
def test_malformed_vectors_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        score_vector(bad)


def test_severity_scale() -> None:
    assert [severity_for_score(s) for s in (0.0, 0.1, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "negligible", "low", "low", "medium", "medium", "high", "high", "critical", "critical"]
    assert severity_for_score(9.5, "2.0") == "high"
