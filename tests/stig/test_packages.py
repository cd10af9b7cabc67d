"""Re-deciding dpkg-dependent rules from the image's package database (oscap < 1.4): the OVAL logic
ci-gate applies, over an OVAL results document shaped like the one oscap writes (definitions first,
then oscap's own results, which must be ignored for dpkg tests)."""

from __future__ import annotations

from pathlib import Path

from ci_gate.stig.model import StigRule
from ci_gate.stig.packages import installed_packages, redecide

OVAL = """<?xml version="1.0"?>
<oval_results xmlns="http://oval.mitre.org/XMLSchema/oval-results-5"
 xmlns:d="http://oval.mitre.org/XMLSchema/oval-definitions-5"
 xmlns:l="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux"
 xmlns:i="http://oval.mitre.org/XMLSchema/oval-definitions-5#independent">
 <d:oval_definitions>
  <d:definitions>
   <d:definition id="def:removed" class="compliance"><d:criteria>
     <d:criterion test_ref="tst:telnetd_absent"/></d:criteria></d:definition>
   <d:definition id="def:either" class="compliance"><d:criteria operator="OR">
     <d:criterion test_ref="tst:rsyslog_present"/>
     <d:criteria negate="true"><d:criterion test_ref="tst:telnetd_absent"/></d:criteria>
   </d:criteria></d:definition>
   <d:definition id="def:extended" class="compliance"><d:criteria>
     <d:extend_definition definition_ref="def:removed"/></d:criteria></d:definition>
   <d:definition id="def:mixed" class="compliance"><d:criteria>
     <d:criterion test_ref="tst:rsyslog_present"/><d:criterion test_ref="tst:conf"/></d:criteria></d:definition>
   <d:definition id="def:versioned" class="compliance"><d:criteria>
     <d:criterion test_ref="tst:rsyslog_version"/></d:criteria></d:definition>
   <d:definition id="def:files" class="compliance"><d:criteria>
     <d:criterion test_ref="tst:conf"/></d:criteria></d:definition>
  </d:definitions>
  <d:tests>
   <l:dpkginfo_test id="tst:telnetd_absent" check="all" check_existence="none_exist" version="1">
     <l:object object_ref="obj:telnetd"/></l:dpkginfo_test>
   <l:dpkginfo_test id="tst:rsyslog_present" check="all" check_existence="at_least_one_exists" version="1">
     <l:object object_ref="obj:rsyslog"/></l:dpkginfo_test>
   <l:dpkginfo_test id="tst:rsyslog_version" check="all" check_existence="at_least_one_exists" version="1">
     <l:object object_ref="obj:rsyslog"/><l:state state_ref="ste:new"/></l:dpkginfo_test>
   <i:textfilecontent54_test id="tst:conf" check="all" version="1"><i:object object_ref="obj:conf"/>
   </i:textfilecontent54_test>
  </d:tests>
  <d:objects>
   <l:dpkginfo_object id="obj:telnetd" version="1"><l:name>telnetd</l:name></l:dpkginfo_object>
   <l:dpkginfo_object id="obj:rsyslog" version="1"><l:name>rsyslog</l:name></l:dpkginfo_object>
  </d:objects>
 </d:oval_definitions>
 <results><system><definitions><definition definition_id="def:removed" result="true"/></definitions>
 </system></results>
</oval_results>
"""

STATUS = """Package: telnetd
Status: install ok installed
Version: 0.17+2.4-2

Package: rsyslog
Status: deinstall ok config-files
Version: 8.2302.0-1

Package: bash
Status: install ok installed
Version: 5.2.15-2+b2
"""


def _rule(name: str, check: str, result: str = "pass") -> StigRule:
    return StigRule(f"xccdf_org.ssgproject.content_rule_{name}", name, result, "medium", check_ref=check)


def test_dpkg_only_checks_are_decided_from_the_image_and_the_rest_is_not_passed_on(tmp_path: Path) -> None:
    oval = tmp_path / "ssg-x-oval.xml.result.xml"
    oval.write_text(OVAL)
    installed = installed_packages(STATUS)
    assert installed == {"telnetd", "bash"}  # rsyslog only has config files left: not installed
    rules = [_rule("removed", "def:removed"), _rule("either", "def:either", "fail"),
             _rule("extended", "def:extended"), _rule("mixed", "def:mixed"),
             _rule("versioned", "def:versioned"), _rule("files", "def:files", "fail"),
             _rule("skipped", "def:removed", "notapplicable")]
    decisions = redecide(rules, [oval], installed)
    results = {rule.short_id: rule.result for rule in decisions.rules}
    assert results == {
        "removed": "fail",  # telnetd is installed in the image, whatever oscap said
        "either": "pass",  # OR(rsyslog installed: no, NOT(telnetd absent: no) = yes)
        "extended": "fail",  # through extend_definition
        "mixed": "notchecked",  # a dpkg test and a file test: ci-gate cannot decide it alone
        "versioned": "notchecked",  # a version state
        "files": "fail",  # no dpkg test: oscap's result stands
        "skipped": "notapplicable",
    }
    assert sorted(decisions.decided) == ["either", "extended", "removed"]
    assert sorted(decisions.undecidable) == ["mixed", "versioned"]
    removed = next(rule for rule in decisions.rules if rule.short_id == "removed")
    assert "package telnetd installed" in removed.evidence

    nothing = redecide(rules, [oval], None)  # no readable dpkg database in the image
    assert {rule.short_id: rule.result for rule in nothing.rules}["removed"] == "notchecked"
