"""The packages and distro gates order versions with `vulns.versions`, and never pass what they cannot order.

Before, a bare `except` fell back to a dpkg-like order: `1.0rc1` was newer than `1.0` for PyPI, and
Maven and crates versions were read the dpkg way (`1.0-SNAPSHOT > 1.0`, `1.0.0-alpha > 1.0.0`).
"""

from __future__ import annotations

import pytest

from ci_gate.model import Distro, Package
from ci_gate.policy.gates._common import CannotCompareVersions, compare_versions
from ci_gate.policy.gates.interface import EVALUATION_ERROR_ID
from tests.policy.helpers import analysis, fire


@pytest.mark.parametrize(("package_type", "older", "newer"), [
    ("python", "1.0rc1", "1.0"),
    ("java-archive", "1.0-SNAPSHOT", "1.0"),
    ("rust-crate", "1.0.0-alpha", "1.0.0"),
    ("npm", "2.0.0-beta.2", "2.0.0"),
    ("deb", "1.0~rc1-1", "1.0-1"),
])
def test_a_pre_release_is_older_than_its_release(package_type: str, older: str, newer: str) -> None:
    image = analysis(packages=(Package(name="lib", version=older, type=package_type),))
    findings = fire("packages", "required_package", {"name": "lib", "version": newer,
                                                     "version_match_type": "minimum"}, image)
    assert [f.message for f in findings] == [
        f"Required min-version input package (lib) is present ({older}), but is lower version than what is "
        f"specified in policy ({newer})"]


@pytest.mark.parametrize(("package_type", "installed", "minimum"), [
    ("python", "1.0", "1.0rc1"),
    ("java-archive", "1.0", "1.0-SNAPSHOT"),
    ("rust-crate", "1.0.0", "1.0.0-alpha"),
])
def test_a_release_satisfies_a_minimum_of_its_pre_release(package_type: str, installed: str, minimum: str) -> None:
    image = analysis(packages=(Package(name="lib", version=installed, type=package_type),))
    assert fire("packages", "required_package", {"name": "lib", "version": minimum,
                                                 "version_match_type": "minimum"}, image) == []


def test_compare_versions_uses_the_scheme_of_the_package_type() -> None:
    assert compare_versions("pep440", "1.0rc1", "1.0") == -1
    assert compare_versions("maven", "1.0-SNAPSHOT", "1.0") == -1
    assert compare_versions("semver", "1.0.0-alpha", "1.0.0") == -1
    with pytest.raises(CannotCompareVersions):
        compare_versions("pep440", "not a version!", "1.0")
    with pytest.raises(CannotCompareVersions):
        compare_versions(None, "1", "2")


def test_an_unreadable_version_is_an_evaluation_error_not_a_pass() -> None:
    image = analysis(packages=(Package(name="lib", version="banana!", type="python"),))
    findings = fire("packages", "required_package", {"name": "lib", "version": "2.0",
                                                     "version_match_type": "minimum"}, image)
    assert len(findings) == 1
    assert findings[0].trigger_id == EVALUATION_ERROR_ID
    assert findings[0].message.startswith("Could not evaluate trigger packages/required_package: ")
    assert "banana!" in findings[0].message


def test_a_package_type_without_a_version_order_is_an_evaluation_error() -> None:
    image = analysis(packages=(Package(name="lib", version="1.0", type="something-new"),))
    findings = fire("packages", "required_package", {"name": "lib", "version": "2.0",
                                                     "version_match_type": "minimum"}, image)
    assert [f.trigger_id for f in findings] == [EVALUATION_ERROR_ID]


def test_distro_versions_compare_in_the_distros_order() -> None:
    alpine = analysis(distro=Distro("alpine", "3.19.1"))
    assert len(fire("distro", "deny", {"distro": "alpine", "version": "3.9", "check": ">"}, alpine)) == 1
    assert fire("distro", "deny", {"distro": "alpine", "version": "3.20", "check": ">="}, alpine) == []


def test_an_unreadable_distro_version_is_an_evaluation_error() -> None:
    image = analysis(distro=Distro("debian", "12"))
    findings = fire("distro", "deny", {"distro": "debian", "version": "x:12", "check": "<"}, image)
    assert [f.trigger_id for f in findings] == [EVALUATION_ERROR_ID]
    assert findings[0].message.startswith("Could not evaluate trigger distro/deny: ")
