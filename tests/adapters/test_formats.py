"""Every CI adapter offers every report format, or says in a marker line that it does not, and why.

A new format in `ci_gate.reports.formats.FORMATS` fails this test until each adapter either passes
it on or lists it in its `ci-gate formats not offered:` line: adding a format is a decision for
each CI, never an omission.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ci_gate.reports.formats import FORMATS

ROOT = Path(__file__).resolve().parents[2]
IDS = [spec.id for spec in FORMATS]
NOT_OFFERED = re.compile(r"ci-gate formats not offered:((?:\s+[a-z][a-z0-9-]*)+)")


def not_offered(text: str) -> set[str]:
    return {name for match in NOT_OFFERED.finditer(text) for name in match.group(1).split()}


def github_action_offers(text: str) -> set[str]:
    """An input named after the format, passed on as `--ID`, and its `ID-file` output."""
    action = yaml.safe_load(text)
    script = "\n".join(str(step.get("run", "")) for step in action["runs"]["steps"])
    return {name for name in IDS if name in action["inputs"] and f'"{name}:$REPORT_' in script
            and f"{name}-file" in action["outputs"]}


def gitlab_component_offers(text: str) -> set[str]:
    return {name for name in IDS if re.search(rf'--{re.escape(name)} "\$CI_GATE_REPORTS/', text)}


def jenkins_library_offers(text: str) -> set[str]:
    return {name for name in IDS if f"'--{name}'," in text}


ADAPTERS = {
    "action.yml": github_action_offers,
    "templates/ci-gate.yml": gitlab_component_offers,
    "integrations/jenkins/vars/ciGate.groovy": jenkins_library_offers,
}


@pytest.mark.parametrize("path", sorted(ADAPTERS))
def test_adapter_offers_every_format_or_says_why_not(path):
    text = (ROOT / path).read_text("utf-8")
    offered = ADAPTERS[path](text)
    declined = not_offered(text)
    assert set(IDS) - offered - declined == set(), f"{path}: formats neither offered nor declined"
    assert declined <= set(IDS), f"{path}: declines formats that do not exist: {declined - set(IDS)}"
    assert not offered & declined, f"{path}: offers and declines {offered & declined}"


def test_the_readers_see_a_format_that_is_passed_on():
    # The readers must not pass a format they cannot see: each finds the formats the adapters pass today.
    assert {"json", "junit", "sarif"} <= github_action_offers((ROOT / "action.yml").read_text("utf-8"))
    assert set(IDS) == gitlab_component_offers((ROOT / "templates/ci-gate.yml").read_text("utf-8"))
    jenkins = (ROOT / "integrations/jenkins/vars/ciGate.groovy").read_text("utf-8")
    assert jenkins_library_offers(jenkins) == {"json", "junit", "sarif", "markdown", "compliance", "html"}
    assert not_offered("# ci-gate formats not offered: html sbom (why)") == {"html", "sbom"}


def test_every_format_is_a_gate_flag_and_a_setting():
    from ci_gate.cli.settings import SETTINGS_BY_NAME

    for spec in FORMATS:
        assert SETTINGS_BY_NAME[spec.id].flag == spec.flag
