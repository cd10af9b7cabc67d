"""CVSS base scores computed from vectors (OSV's `severity[].score` is a vector, never a number).

* v3.0 / v3.1: the base equations of the CVSS v3.1 specification §7.1 (v3.0 differs only in its
  Roundup function, spec §7.4 / Appendix A).
* v4.0: the MacroVector method of the CVSS v4.0 specification §8 — the vector's MacroVector score
  from FIRST's lookup table, lowered by the mean proportional severity distance within each
  equivalence class. The table itself is data (`cvss4_data.json`) taken from the specification.
* v2.0: the base equation of the CVSS v2 guide §3.2.1.

Exploitability and impact sub-scores are kept for v2/v3 because Anchore's vulnerabilities gate
has parameters for them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from ci_gate.model import SEVERITIES

__all__ = ["SEVERITIES", "CvssScore", "severity_for_score"]


@dataclass(frozen=True, slots=True)
class CvssScore:
    """A parsed and scored CVSS vector."""

    version: str
    """2.0, 3.0, 3.1 or 4.0."""
    vector: str
    base_score: float
    exploitability_score: float | None = None
    """The v2/v3 exploitability sub-score; None for v4, which has none."""
    impact_score: float | None = None
    """The v2/v3 impact sub-score; None for v4."""

    @property
    def severity(self) -> str:
        """The qualitative rating of the base score (none is reported as `negligible`)."""
        return severity_for_score(self.base_score, self.version)


def severity_for_score(score: float, version: str = "3.1") -> str:
    """Qualitative rating: v3/v4 scale (spec §5), v2 as NVD rates it (no critical)."""
    if version.startswith("2"):
        return "low" if score < 4.0 else "medium" if score < 7.0 else "high"
    if score == 0.0:
        return "negligible"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


def _round_one(value: float) -> float:
    """Round half up to one decimal (what the specifications mean by "rounded to one decimal")."""
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _metrics(parts: list[str], vector: str) -> dict[str, str]:
    metrics: dict[str, str] = {}
    for part in parts:
        name, separator, value = part.partition(":")
        if not separator or not name or not value or name in metrics:
            raise ValueError(f"malformed CVSS vector: {vector!r}")
        metrics[name] = value
    return metrics


def score_vector(vector: str) -> CvssScore:
    """Score any supported CVSS vector; ValueError when it is malformed or of an unknown version."""
    text = vector.strip()
    if text.startswith("CVSS:3.0/") or text.startswith("CVSS:3.1/"):
        return _score_v3(text)
    if text.startswith("CVSS:4.0/"):
        return _score_v4(text)
    if text.startswith("AV:") or text.startswith("(AV:"):
        return _score_v2(text)
    raise ValueError(f"unsupported CVSS vector: {vector!r}")


# --- v3 ----------------------------------------------------------------------------------------

_V3_WEIGHTS = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_V3_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup_v31(value: float) -> float:
    """CVSS v3.1 Appendix A Roundup: the smallest one-decimal number >= value, robust to float error."""
    integer = round(value * 100000)
    if integer % 10000 == 0:
        return integer / 100000.0
    return (math.floor(integer / 10000) + 1) / 10.0


def _roundup_v30(value: float) -> float:
    return math.ceil(value * 10) / 10


def _score_v3(vector: str) -> CvssScore:
    version = vector[5:8]
    metrics = _metrics(vector.split("/")[1:], vector)
    try:
        scope = metrics["S"]
        privileges = _V3_PRIVILEGES[scope][metrics["PR"]]
        weights = {name: _V3_WEIGHTS[name][metrics[name]] for name in _V3_WEIGHTS}
    except KeyError as error:
        raise ValueError(f"CVSS v3 vector lacks or misspells base metric {error}: {vector!r}") from None
    roundup = _roundup_v31 if version == "3.1" else _roundup_v30
    impact_subscore = 1 - (1 - weights["C"]) * (1 - weights["I"]) * (1 - weights["A"])
    if scope == "U":
        impact = 6.42 * impact_subscore
    else:
        impact = 7.52 * (impact_subscore - 0.029) - 3.25 * (impact_subscore - 0.02) ** 15
    exploitability = 8.22 * weights["AV"] * weights["AC"] * privileges * weights["UI"]
    if impact <= 0:
        base = 0.0
    elif scope == "U":
        base = roundup(min(impact + exploitability, 10))
    else:
        base = roundup(min(1.08 * (impact + exploitability), 10))
    return CvssScore(version, vector, base, _round_one(exploitability), _round_one(max(impact, 0.0)))


# --- v2 ----------------------------------------------------------------------------------------

_V2_WEIGHTS = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}


def _score_v2(vector: str) -> CvssScore:
    metrics = _metrics(vector.strip("()").split("/"), vector)
    try:
        w = {name: _V2_WEIGHTS[name][metrics[name]] for name in _V2_WEIGHTS}
    except KeyError as error:
        raise ValueError(f"CVSS v2 vector lacks or misspells base metric {error}: {vector!r}") from None
    impact = 10.41 * (1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"]))
    exploitability = 20 * w["AV"] * w["AC"] * w["Au"]
    factor = 0.0 if impact == 0 else 1.176
    base = _round_one(((0.6 * impact) + (0.4 * exploitability) - 1.5) * factor)
    return CvssScore("2.0", vector, max(base, 0.0), _round_one(exploitability), _round_one(impact))


# --- v4 ----------------------------------------------------------------------------------------

_V4_VALUES = {
    "AV": "NALP", "AC": "LH", "AT": "NP", "PR": "NLH", "UI": "NPA",
    "VC": "HLN", "VI": "HLN", "VA": "HLN", "SC": "HLN", "SI": "HLN", "SA": "HLN",
}
_V4_OPTIONAL = {
    "E": "XAPU", "CR": "XHML", "IR": "XHML", "AR": "XHML",
    "MAV": "XNALP", "MAC": "XLH", "MAT": "XNP", "MPR": "XNLH", "MUI": "XNPA",
    "MVC": "XHLN", "MVI": "XHLN", "MVA": "XHLN", "MSC": "XHLN", "MSI": "XSHLN", "MSA": "XSHLN",
    "S": "XNP", "AU": "XNY", "R": "XAUI", "V": "XDC", "RE": "XLMH", "U": None,
}
_V4_LEVELS = {
    "AV": {"N": 0.0, "A": 0.1, "L": 0.2, "P": 0.3},
    "PR": {"N": 0.0, "L": 0.1, "H": 0.2},
    "UI": {"N": 0.0, "P": 0.1, "A": 0.2},
    "AC": {"L": 0.0, "H": 0.1},
    "AT": {"N": 0.0, "P": 0.1},
    "VC": {"H": 0.0, "L": 0.1, "N": 0.2},
    "VI": {"H": 0.0, "L": 0.1, "N": 0.2},
    "VA": {"H": 0.0, "L": 0.1, "N": 0.2},
    "SC": {"H": 0.1, "L": 0.2, "N": 0.3},
    "SI": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
    "SA": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
    "CR": {"H": 0.0, "M": 0.1, "L": 0.2},
    "IR": {"H": 0.0, "M": 0.1, "L": 0.2},
    "AR": {"H": 0.0, "M": 0.1, "L": 0.2},
}


@lru_cache(maxsize=1)
def _v4_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "cvss4_data.json").read_text())
    return data


def _effective(metrics: dict[str, str], name: str) -> str:
    """The value a metric takes in scoring: its modified value if set, worst case for unset E/CR/IR/AR."""
    value = metrics.get(name, "X")
    if name == "E" and value == "X":
        return "A"
    if name in ("CR", "IR", "AR") and value == "X":
        return "H"
    modified = metrics.get("M" + name, "X")
    return modified if modified != "X" else value


def _level(top: bool, middle: bool) -> int:
    """A three-level equivalence class: 0 when its top condition holds, else 1 when its middle one does, else 2."""
    return 0 if top else 1 if middle else 2


def _macro_vector(m: dict[str, str]) -> str:
    def e(name: str) -> str:
        return _effective(m, name)

    eq1 = _level(e("AV") == "N" and e("PR") == "N" and e("UI") == "N",
                 (e("AV") == "N" or e("PR") == "N" or e("UI") == "N") and e("AV") != "P")
    eq2 = 0 if e("AC") == "L" and e("AT") == "N" else 1
    eq3 = _level(e("VC") == "H" and e("VI") == "H", e("VC") == "H" or e("VI") == "H" or e("VA") == "H")
    eq4 = _level(e("MSI") == "S" or e("MSA") == "S", e("SC") == "H" or e("SI") == "H" or e("SA") == "H")
    eq5 = {"A": 0, "P": 1, "U": 2}[e("E")]
    high_requirement = (
        (e("CR") == "H" and e("VC") == "H")
        or (e("IR") == "H" and e("VI") == "H")
        or (e("AR") == "H" and e("VA") == "H")
    )
    eq6 = 0 if high_requirement else 1
    return f"{eq1}{eq2}{eq3}{eq4}{eq5}{eq6}"


def _value_in(vector_part: str, metric: str) -> str:
    for piece in vector_part.split("/"):
        name, _, value = piece.partition(":")
        if name == metric:
            return value
    raise KeyError(metric)


def _score_v4(vector: str) -> CvssScore:
    metrics = _metrics(vector.split("/")[1:], vector)
    for name, allowed in _V4_VALUES.items():
        if metrics.get(name) is None or metrics[name] not in allowed:
            raise ValueError(f"CVSS v4 vector lacks or misspells base metric {name}: {vector!r}")
    for name, value in metrics.items():
        if name in _V4_VALUES:
            continue
        if name not in _V4_OPTIONAL:
            raise ValueError(f"CVSS v4 vector has an unknown metric {name}: {vector!r}")
        options = _V4_OPTIONAL[name]
        if options is not None and value not in options:
            raise ValueError(f"CVSS v4 vector has an invalid value {name}:{value}: {vector!r}")
    base = _round_one(_v4_value(metrics) + 1e-6) if _has_impact(metrics) else 0.0
    return CvssScore("4.0", vector, min(max(base, 0.0), 10.0))


def _has_impact(metrics: dict[str, str]) -> bool:
    return any(_effective(metrics, name) != "N" for name in ("VC", "VI", "VA", "SC", "SI", "SA"))


def _v4_value(metrics: dict[str, str]) -> float:
    data = _v4_data()
    lookup: dict[str, float] = data["lookup"]
    macro = _macro_vector(metrics)
    value = lookup[macro]
    eq = [int(character) for character in macro]

    def lower(changes: dict[int, int]) -> float | None:
        code = "".join(str(eq[i] + changes.get(i, 0)) for i in range(6))
        return lookup.get(code)

    lower_eq1 = lower({0: 1})
    lower_eq2 = lower({1: 1})
    if eq[2] == 0 and eq[5] == 0:
        candidates = [score for score in (lower({5: 1}), lower({2: 1})) if score is not None]
        lower_eq3eq6 = max(candidates) if candidates else None
    elif eq[2] == 1 and eq[5] == 0:
        lower_eq3eq6 = lower({5: 1})
    elif eq[5] == 1 and eq[2] in (0, 1):
        lower_eq3eq6 = lower({2: 1})
    else:
        lower_eq3eq6 = lower({2: 1, 5: 1})
    lower_eq4 = lower({3: 1})
    lower_eq5 = lower({4: 1})

    composed = data["max_composed"]
    max_vectors = [
        a + b + c + d + f
        for a in composed["eq1"][macro[0]]
        for b in composed["eq2"][macro[1]]
        for c in composed["eq3"][macro[2]][macro[5]]
        for d in composed["eq4"][macro[3]]
        for f in composed["eq5"][macro[4]]
    ]
    distances: dict[str, float] = {}
    for max_vector in max_vectors:
        distances = {
            name: levels[_effective(metrics, name)] - levels[_value_in(max_vector, name)]
            for name, levels in _V4_LEVELS.items()
        }
        if all(distance >= 0 for distance in distances.values()):
            break

    current = {
        "eq1": distances["AV"] + distances["PR"] + distances["UI"],
        "eq2": distances["AC"] + distances["AT"],
        "eq3eq6": sum(distances[name] for name in ("VC", "VI", "VA", "CR", "IR", "AR")),
        "eq4": distances["SC"] + distances["SI"] + distances["SA"],
    }
    severity = data["max_severity"]
    step = 0.1
    depth = {
        "eq1": severity["eq1"][macro[0]] * step,
        "eq2": severity["eq2"][macro[1]] * step,
        "eq3eq6": severity["eq3eq6"][macro[2]][macro[5]] * step,
        "eq4": severity["eq4"][macro[3]] * step,
    }
    total = 0.0
    existing = 0
    lowers = (("eq1", lower_eq1), ("eq2", lower_eq2), ("eq3eq6", lower_eq3eq6), ("eq4", lower_eq4))
    for key, lower_score in lowers:
        if lower_score is not None:
            existing += 1
            total += (value - lower_score) * (current[key] / depth[key])
    if lower_eq5 is not None:
        existing += 1  # EQ5 has no severity distance inside its MacroVector: it adds 0 but counts.
    mean = total / existing if existing else 0.0
    return float(value - mean)
