
"""Version comparators checked against their reference implementations' own test cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ci_gate.vulns.versions import (
    apk,
    dpkg,
    generic,
    go,
    maven,
    pep440,
    rpm,
    rubygems,
    scheme_for_ecosystem,
    semver,
)

DATA = Path(__file__).parent / "data"


# --- dpkg: lib/dpkg/t/t-version.c and deb-version(7) ----------------------------------------------

DPKG_CASES = [
    ("0:0-0", "0:0-0", 0),
    ("0:0-00", "0:00-0", 0),
    ("1:2-3", "1:2-3", 0),
    ("0:1-1", "1:1-1", -1),
    ("1:1-1", "0:1-1", 1),
    ("0:1-1", "0:2-1", -1),
    ("0:1-1", "0:1-2", -1),
    ("0:1.1-1", "0:1.2-1", -1),
    ("0:1.2-1", "0:1.1-1", 1),
    ("0:1-1.1", "0:1-1.2", -1),
    ("0:0.0-1", "0:0.0-1", 0),
    ("1.0~rc1-1", "1.0-1", -1),
    ("1.0~~", "1.0~~a", -1),
    ("1.0~~a", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),
    ("1.0a", "1.0+", -1),
    ("1.0+", "1.0.1", -1),
    ("2:1.0", "1:9.9", 1),
    ("1.2.3-1", "1.2.3-1+deb12u1", -1),
    ("2.36.1-8+deb11u1", "2.36.1-8+deb11u2", -1),
    ("1.1.1n-0+deb11u5", "1.1.1w-0+deb11u1", -1),
    ("7.74.0-1.3+deb11u7", "7.74.0-1.3+deb11u14", -1),
    ("1.0-1", "1.0-1", 0),
    ("0001.0-1", "1.0-1", 0),
]


@pytest.mark.parametrize(("left", "right", "expected"), DPKG_CASES)
def test_dpkg_compare(left: str, right: str, expected: int) -> None:
    assert dpkg.compare(left, right) == expected
    assert dpkg.compare(right, left) == -expected


@pytest.mark.parametrize("bad", ["", "a:1.0", "1.0-", "1.0 1"])
def test_dpkg_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        dpkg.parse(bad)


def test_dpkg_parse_splits_epoch_upstream_revision() -> None:
    assert dpkg.parse("1:2.30-1-3") == dpkg.DebianVersion(1, "2.30-1", "3")


# --- apk: apk-tools test/unit/version.data (the project's own file, verbatim) --------------------


def _apk_lines() -> list[str]:
    lines = []
    for raw in (DATA / "apk-version.data").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_apk_reference_data() -> None:
    masks = {"<": {-1}, ">": {1}, "=": {0}, "<=": {-1, 0}, ">=": {1, 0}}
    failures = []
    checked = 0
    for line in _apk_lines():
        parts = line.split()
        if len(parts) == 3:
            left, operator, right = parts
            invert = operator.startswith("!")
            operator = operator.lstrip("!")
            fuzzy = "~" in operator
            allowed = set(masks.get(operator.replace("~", "") or "=", {0}))
            if fuzzy:
                allowed.add(0)
            ok = apk.compare(left, right, fuzzy=fuzzy) in allowed
        else:
            invert = line.startswith("!")
            ok = apk.is_valid(line.lstrip("!"))
        if ok == invert:
            failures.append(line)
        checked += 1
    assert checked > 700
    assert failures == []


# --- rpm: rpm's tests/rpmvercmp.at --------------------------------------------------------------

RPMVERCMP_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1), ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1),
    ("2.0.1", "2.0.1a", -1), ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1), ("10xyz", "10.1xyz", -1),
    ("10.1xyz", "10xyz", 1), ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1), ("10b2", "10a1", 1), ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1), ("10.0001", "10.0001", 0),
    ("10.0001", "10.1", 0), ("10.1", "10.0001", 0), ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1), ("20101121", "20101121", 0), ("20101121", "20101122", -1),
    ("20101122", "20101121", 1), ("2_0", "2_0", 0), ("2.0", "2_0", 0), ("2_0", "2.0", 0), ("a", "a", 0),
    ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0), ("+a", "+a", 0), ("+a", "_a", 0), ("_a", "+a", 0),
    ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_+", 0), ("+", "_", 0), ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc2", "1.0~rc1", 1), ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1), ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1), ("1.0^git1", "1.0^git2", -1),
    ("1.0^git2", "1.0^git1", 1), ("1.0^git1", "1.01", -1), ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1), ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0), ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1), ("1.0~rc1^git1", "1.0~rc1^git1", 0),
    ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc1^git1", -1), ("1.0^git1~pre", "1.0^git1~pre", 0),
    ("1.0^git1", "1.0^git1~pre", 1), ("1.0^git1~pre", "1.0^git1", -1),
]


@pytest.mark.parametrize(("left", "right", "expected"), RPMVERCMP_CASES)
def test_rpmvercmp(left: str, right: str, expected: int) -> None:
    assert rpm.vercmp(left, right) == expected


def test_rpm_epoch_version_release() -> None:
    assert rpm.compare("1:1.0-1", "2.0-1") == 1
    assert rpm.compare("0:1.0-1.el9", "1.0-1.el9") == 0
    assert rpm.compare("1.0-1.el9", "1.0-2.el9") == -1
    assert rpm.compare("3.0.7-24.el9", "3.0.7-25.el9_3") == -1
    assert rpm.compare("1.0-1", "1.0") == 0


# --- PEP 440: cases from pypa/packaging tests/test_version.py ------------------------------------

PEP440_ORDER = [
    "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
    "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5",
    "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.1.dev1",
]


def test_pep440_order() -> None:
    for lower, higher in itertools.pairwise(PEP440_ORDER):
        assert pep440.compare(lower, higher) == -1, (lower, higher)
    assert pep440.compare("1.0", "1.0.0") == 0
    assert pep440.compare("1!1.0", "2.0") == 1
    with pytest.raises(ValueError):
        pep440.compare("not-a-version", "1.0")


# --- SemVer: node-semver test/fixtures/comparisons.js and equality.js ----------------------------

SEMVER_GREATER = [
    ("0.0.0", "0.0.0-foo"), ("0.0.1", "0.0.0"), ("1.0.0", "0.9.9"), ("0.10.0", "0.9.0"),
    ("0.99.0", "0.10.0"), ("2.0.0", "1.2.3"), ("v0.0.0", "0.0.0-foo"), ("v0.0.1", "0.0.0"),
    ("v1.0.0", "0.9.9"), ("v0.10.0", "0.9.0"), ("v0.99.0", "0.10.0"), ("v2.0.0", "1.2.3"),
    ("0.0.0", "v0.0.0-foo"), ("0.0.1", "v0.0.0"), ("1.0.0", "v0.9.9"), ("0.10.0", "v0.9.0"),
    ("0.99.0", "v0.10.0"), ("2.0.0", "v1.2.3"), ("1.2.3", "1.2.3-asdf"), ("1.2.3", "1.2.3-4"),
    ("1.2.3", "1.2.3-4-foo"), ("1.2.3-5-foo", "1.2.3-5"), ("1.2.3-5", "1.2.3-4"),
    ("1.2.3-5-foo", "1.2.3-5-Foo"), ("3.0.0", "2.7.2+asdf"), ("1.2.3-a.10", "1.2.3-a.5"),
    ("1.2.3-a.b", "1.2.3-a.5"), ("1.2.3-a.b", "1.2.3-a"), ("1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100"),
    ("1.2.3-r2", "1.2.3-r100"), ("1.2.3-r100", "1.2.3-R2"),
]
SEMVER_EQUAL = [
    ("1.2.3", "v1.2.3"), ("1.2.3", "=1.2.3"), ("1.2.3", "v 1.2.3"), ("1.2.3", "= 1.2.3"),
    ("1.2.3", " v1.2.3"), ("1.2.3", " =1.2.3"), ("1.2.3", " v 1.2.3"), ("1.2.3", " = 1.2.3"),
    ("1.2.3-0", "v1.2.3-0"), ("1.2.3-0", "=1.2.3-0"), ("1.2.3-1", "v1.2.3-1"), ("1.2.3-beta", "v1.2.3-beta"),
    ("1.2.3-beta+build", " = 1.2.3-beta+otherbuild"), ("1.2.3+build", " = 1.2.3+otherbuild"),
    ("1.2.3-beta+build", "1.2.3-beta+otherbuild"), ("1.2.3+build", "1.2.3+otherbuild"),
]


@pytest.mark.parametrize(("greater", "lesser"), SEMVER_GREATER)
def test_semver_comparisons(greater: str, lesser: str) -> None:
    assert semver.compare(greater, lesser) == 1
    assert semver.compare(lesser, greater) == -1


@pytest.mark.parametrize(("left", "right"), SEMVER_EQUAL)
def test_semver_equality(left: str, right: str) -> None:
    assert semver.compare(left, right) == 0


def test_semver_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        semver.parse("1.2")


# --- Maven: maven-artifact ComparableVersionTest --------------------------------------------------

MAVEN_QUALIFIER_ORDER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc",
    "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1",
    "1-1-snapshot", "1-1", "1-2", "1-123",
]
MAVEN_NUMBER_ORDER = [
    "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
    "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a",
    "11b", "11c", "11m",
]
MAVEN_EQUAL = [
    ("1", "1"), ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"),
    ("1.0", "1.0-0"), ("1a", "1.a"), ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1.0.a"),
    ("1.0.0a", "1.0.0.a"), ("1x", "1.x"), ("1x", "1-x"), ("1x", "1.0-x"), ("1x", "1.0.0-x"),
    ("1.0x", "1.0.x"), ("1.0.0x", "1.0.0.x"), ("1ga", "1"), ("1final", "1"), ("1cr", "1rc"),
    ("1a1", "1alpha1"), ("1b2", "1beta2"), ("1m3", "1milestone3"), ("1X", "1x"), ("1A", "1a"),
    ("1B", "1b"), ("1M", "1m"), ("1Ga", "1"), ("1GA", "1"), ("1Final", "1"), ("1FinaL", "1"),
    ("1FINAL", "1"), ("1Cr", "1Rc"), ("1cR", "1rC"), ("1m3", "1Milestone3"), ("1m3", "1MileStone3"),
    ("1m3", "1MILESTONE3"), ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
]
MAVEN_ORDER_PAIRS = [
    ("1", "2"), ("1.5", "2"), ("1", "2.5"), ("1.0", "1.1"), ("1.1", "1.2"), ("1.0.0", "1.1"),
    ("1.0.1", "1.1"), ("1.1", "1.2.0"), ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-alpha-2"),
    ("1.0-alpha-1", "1.0-beta-1"), ("1.0-beta-1", "1.0-SNAPSHOT"), ("1.0-SNAPSHOT", "1.0"),
    ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("1.0.0", "1.0-1"),
    ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"), ("2.0.1", "2.0.1-123"),
    ("2.0.1-xyz", "2.0.1-123"),
]


@pytest.mark.parametrize("order", [MAVEN_QUALIFIER_ORDER, MAVEN_NUMBER_ORDER])
def test_maven_orders(order: list[str]) -> None:
    for i, low in enumerate(order):
        for high in order[i + 1:]:
            assert maven.compare(low, high) == -1, (low, high)
            assert maven.compare(high, low) == 1, (high, low)


@pytest.mark.parametrize(("left", "right"), MAVEN_EQUAL)
def test_maven_equal(left: str, right: str) -> None:
    assert maven.compare(left, right) == 0
    assert maven.compare(right, left) == 0


@pytest.mark.parametrize(("low", "high"), MAVEN_ORDER_PAIRS)
def test_maven_pairs(low: str, high: str) -> None:
    assert maven.compare(low, high) == -1
    assert maven.compare(high, low) == 1


# --- Go: golang.org/x/mod/semver semver_test.go ---------------------------------------------------

GO_TESTS = [  # (input, canonical or "" when invalid), in ascending order as in the reference test
    ("bad", ""), ("v1-alpha.beta.gamma", ""), ("v1-pre", ""), ("v1+meta", ""), ("v1-pre+meta", ""),
    ("v1.2-pre", ""), ("v1.2+meta", ""), ("v1.2-pre+meta", ""), ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"), ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"), ("v1.0.0-beta.2", "v1.0.0-beta.2"), ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"), ("v1", "v1.0.0"), ("v1.0", "v1.0.0"), ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"), ("v1.2.0", "v1.2.0"), ("v1.2.3-456", "v1.2.3-456"), ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"), ("v1.2.3-456a", "v1.2.3-456a"), ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"), ("v1.2.3-pre.1", "v1.2.3-pre.1"), ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"), ("v1.2.3+meta", "v1.2.3"), ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
]


def test_go_semver_reference_order() -> None:
    for i, (left, left_canonical) in enumerate(GO_TESTS):
        assert go.is_valid(left) == bool(left_canonical), left
        for j, (right, right_canonical) in enumerate(GO_TESTS):
            result = go.compare(left, right)
            expected = 0 if left_canonical == right_canonical else -1 if i < j else 1
            assert result == expected, (left, right)


def test_go_pseudo_versions_and_bare_osv_versions() -> None:
    assert go.compare("0.0.0-20191109021931-daa7c04131f5", "0.0.0-20200124225646-8b5121be2f68") == -1
    assert go.compare("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3") == 1
    assert go.compare("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4") == -1
    assert go.compare("v2.0.0+incompatible", "2.0.0") == 0


# --- RubyGems: rubygems test/rubygems/test_gem_version.rb -----------------------------------------

GEM_SPACESHIP = [
    ("1.0", "1.0.0", 0), ("1.0", "1.0.a", 1), ("1.8.2", "0.0.0", 1), ("1.8.2", "1.8.2.a", 1),
    ("1.8.2.b", "1.8.2.a", 1), ("1.8.2.a", "1.8.2", -1), ("1.8.2.a10", "1.8.2.a9", 1), ("", "0", 0),
    ("0.beta.1", "0.0.beta.1", 0), ("0.0.beta", "0.0.beta.1", -1), ("0.0.beta", "0.beta.1", -1),
    ("5.a", "5.0.0.rc2", -1), ("5.x", "5.0.0.rc2", 1), ("1.0.0-rc1", "1.0.0.pre.rc1", 0),
    ("1.0.0-rc1", "1.0.0", -1),
]


@pytest.mark.parametrize(("left", "right", "expected"), GEM_SPACESHIP)
def test_rubygems_spaceship(left: str, right: str, expected: int) -> None:
    assert rubygems.compare(left, right) == expected


def test_rubygems_rejects_invalid() -> None:
    assert not rubygems.is_valid("junk")
    assert not rubygems.is_valid("1.0\n2.0")
    with pytest.raises(ValueError):
        rubygems.compare("junk", "1.0")


def test_generic_fallback_and_scheme_table() -> None:
    assert generic.compare("1.2.10", "1.2.9") == 1
    assert generic.compare("1.0.0-beta", "1.0.0") == -1
    assert scheme_for_ecosystem("Debian:12") == "dpkg"
    assert scheme_for_ecosystem("Alpine:v3.19") == "apk"
    assert scheme_for_ecosystem("Red Hat:enterprise_linux:9::appstream") == "rpm"
    assert scheme_for_ecosystem("PyPI") == "pep440"
    assert scheme_for_ecosystem("NuGet") == "generic"
