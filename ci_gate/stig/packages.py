"""Package facts for oscap < 1.4 on dpkg-based images, from ci-gate's own dpkg catalogue.

OpenSCAP before 1.4 (Debian bookworm ships 1.3.7) opens the dpkg database of the host, not the
one under OSCAP_PROBE_ROOT (fixed upstream in PR #2046), so every OVAL `dpkginfo_test` describes
the machine that runs the scan, not the image. ci-gate reads the image's
`/var/lib/dpkg/status` itself (the analyzer's parser) and re-decides the rules whose OVAL
definition is made only of `dpkginfo_test`s on a literal package name without a state (SSG's
`package_X_installed` / `package_X_removed` templates): existence is the whole check. A rule whose
definition mixes a dpkg test with other tests, or uses a version state, cannot be decided that way
and becomes `notchecked` (Not_Reviewed in the checklist): a host fact is never reported as the
image's.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ci_gate.stig.model import StigRule

_LINUX = "http://oval.mitre.org/XMLSchema/oval-definitions-5#linux"
_DEF = "http://oval.mitre.org/XMLSchema/oval-definitions-5"
_RESULTS = "http://oval.mitre.org/XMLSchema/oval-results-5"
_CPE_DICT = "http://cpe.mitre.org/dictionary/2.0"
_CPE_LANG = "http://cpe.mitre.org/language/2.0"
_XCCDF = "http://checklists.nist.gov/xccdf/1.2"


def installed_packages(status_text: str) -> set[str]:
    """Names of the installed packages of a dpkg status file (the analyzer's parser)."""
    from ci_gate.analyze.catalogers.dpkg import entries_from, parse_stanzas

    problems: list[str] = []
    return {entry.name for entry in entries_from(parse_stanzas(status_text, problems))}


@dataclass(slots=True)
class _Oval:
    criteria: dict[str, ET.Element] = field(default_factory=dict)
    """definition id -> its <criteria> element."""
    dpkg_tests: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    """test id -> (check_existence, object id, has a state)."""
    dpkg_objects: dict[str, str] = field(default_factory=dict)
    """object id -> literal package name ('' when it is a variable or a pattern)."""
    other_tests: set[str] = field(default_factory=set)


def _read_definitions(oval_results: Path) -> _Oval:
    oval = _Oval()
    for event, element in ET.iterparse(oval_results, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == f"{{{_RESULTS}}}results":
                break  # the definitions come first; the (host) results are not needed
            continue
        if tag == f"{{{_DEF}}}definition" and element.get("id"):
            criteria = element.find(f"{{{_DEF}}}criteria")
            if criteria is not None:
                oval.criteria[element.get("id", "")] = criteria
        elif tag == f"{{{_LINUX}}}dpkginfo_test":
            target = element.find(f"{{{_LINUX}}}object")
            oval.dpkg_tests[element.get("id", "")] = (
                element.get("check_existence", "at_least_one_exists"),
                target.get("object_ref", "") if target is not None else "",
                element.find(f"{{{_LINUX}}}state") is not None)
        elif tag == f"{{{_LINUX}}}dpkginfo_object":
            name = element.find(f"{{{_LINUX}}}name")
            literal = name is not None and not name.get("var_ref") and name.get("operation", "equals") == "equals"
            oval.dpkg_objects[element.get("id", "")] = (name.text or "").strip() if literal and name is not None else ""
        elif tag.endswith("_test") and element.get("id"):
            oval.other_tests.add(element.get("id", ""))
    return oval


def _tests(criteria: ET.Element, oval: _Oval, depth: int = 0) -> list[str] | None:
    """Every test id a criteria tree uses, following extend_definition; None past a sane depth."""
    if depth > 8:
        return None
    found: list[str] = []
    for child in criteria.iter():
        if child.tag == f"{{{_DEF}}}criterion":
            found.append(child.get("test_ref", ""))
        elif child.tag == f"{{{_DEF}}}extend_definition":
            extended = oval.criteria.get(child.get("definition_ref", ""))
            nested = _tests(extended, oval, depth + 1) if extended is not None else None
            if nested is None:
                return None
            found.extend(nested)
    return found


def _evaluate(node: ET.Element, oval: _Oval, installed: set[str], depth: int = 0) -> bool | None:
    """OVAL criteria logic over dpkg existence tests; None when something is not decidable."""
    negate = node.get("negate", "false") == "true"
    value: bool | None
    if node.tag == f"{{{_DEF}}}criterion":
        test = oval.dpkg_tests.get(node.get("test_ref", ""))
        if test is None or test[2]:
            return None
        name = oval.dpkg_objects.get(test[1], "")
        if not name:
            return None
        exists = name in installed
        value = {"at_least_one_exists": exists, "any_exist": True, "all_exist": exists, "only_one_exists": exists,
                 "none_exist": not exists}.get(test[0])
    elif node.tag == f"{{{_DEF}}}extend_definition":
        extended = oval.criteria.get(node.get("definition_ref", ""))
        value = _evaluate(extended, oval, installed, depth + 1) if extended is not None and depth < 8 else None
    elif node.tag == f"{{{_DEF}}}criteria":
        values = [_evaluate(child, oval, installed, depth + 1) for child in node
                  if child.tag in (f"{{{_DEF}}}criteria", f"{{{_DEF}}}criterion", f"{{{_DEF}}}extend_definition")]
        if not values or any(item is None for item in values):
            return None
        operator = node.get("operator", "AND")
        if operator == "AND":
            value = all(values)
        elif operator == "OR":
            value = any(values)
        elif operator == "ONE":
            value = sum(1 for item in values if item) == 1
        elif operator == "XOR":
            value = sum(1 for item in values if item) % 2 == 1
        else:
            return None
    else:
        return None
    return None if value is None else (not value if negate else value)


@dataclass(slots=True)
class PackageDecisions:
    rules: list[StigRule]
    decided: list[str]
    """Rules re-decided from the image's dpkg database."""
    undecidable: list[str]
    """Rules with a dpkg test that could not be re-decided (now notchecked)."""


def redecide(rules: list[StigRule], oval_results: list[Path], installed: set[str] | None,
             platforms: dict[str, bool | None] | None = None) -> PackageDecisions:
    """Rules whose check uses dpkginfo tests, decided from `installed` (None: the image has no dpkg
    database ci-gate could read, so every such rule is notchecked). `platforms`: for rules whose
    applicability (CPE platform) depends on a package, whether they apply to the image
    (`platform_applicability`); None where that cannot be decided."""
    platforms = platforms or {}
    oval = _Oval()
    for path in oval_results:
        part = _read_definitions(path)
        oval.criteria.update(part.criteria)
        oval.dpkg_tests.update(part.dpkg_tests)
        oval.dpkg_objects.update(part.dpkg_objects)
        oval.other_tests |= part.other_tests
    decided: list[str] = []
    undecidable: list[str] = []
    out: list[StigRule] = []
    for rule in rules:
        if rule.rule_id in platforms:
            applies = platforms[rule.rule_id]
            if applies is False and rule.result != "notapplicable":
                decided.append(rule.short_id)
                out.append(dataclasses.replace(rule, result="notapplicable", evidence=(
                    "notapplicable: its platform needs a package the image's /var/lib/dpkg/status does not list "
                    f"(oscap {rule.result} was about the host's dpkg database, OpenSCAP < 1.4)")))
                continue
            if applies is not False and rule.result == "notapplicable":
                undecidable.append(rule.short_id)
                out.append(dataclasses.replace(rule, result="notchecked", evidence=(
                    ("applies to the image (its platform's package is in the image's /var/lib/dpkg/status)"
                     if applies else "may apply to the image (its platform depends on packages)")
                    + " but oscap < 1.4 read the host's dpkg database and skipped it: review manually")))
                continue
        criteria = oval.criteria.get(rule.check_ref)
        tests = _tests(criteria, oval) if criteria is not None else []
        if rule.result in ("notselected", "notapplicable") or not tests or \
                not any(test in oval.dpkg_tests for test in (tests or [])):
            out.append(rule)
            continue
        value = _evaluate(criteria, oval, installed) if installed is not None and criteria is not None else None
        if value is None or installed is None:
            undecidable.append(rule.short_id)
            out.append(dataclasses.replace(rule, result="notchecked", evidence=(
                f"oscap result {rule.result} is not used: the check reads the dpkg database, which this oscap "
                "reads from the host, not the image (OpenSCAP < 1.4), and ci-gate cannot decide it alone; "
                "review manually")))
            continue
        result = "pass" if value else "fail"
        names = sorted({oval.dpkg_objects.get(oval.dpkg_tests[test][1], "")
                        for test in tests if test in oval.dpkg_tests})
        facts = "; ".join(f"package {name} {'installed' if name in installed else 'not installed'}" for name in names)
        decided.append(rule.short_id)
        out.append(dataclasses.replace(rule, result=result, evidence=(
            f"decided by ci-gate from the image's /var/lib/dpkg/status (oscap {rule.result} was about the host's "
            f"dpkg database, OpenSCAP < 1.4); decided by {rule.check_ref}; looked at: {facts}")))
    return PackageDecisions(out, decided, undecidable)


def _definition_results(oval_results: Path) -> dict[str, str]:
    """oscap's own result for each OVAL definition (right for every test but dpkginfo ones)."""
    found: dict[str, str] = {}
    inside = False
    for event, element in ET.iterparse(oval_results, events=("start", "end")):
        if element.tag == f"{{{_RESULTS}}}results":
            inside = event == "start"
        elif inside and event == "end" and element.tag == f"{{{_RESULTS}}}definition":
            found.setdefault(element.get("definition_id", ""), element.get("result", ""))
            element.clear()
    return found


def _uses_dpkg(definition: str, oval: _Oval) -> bool:
    criteria = oval.criteria.get(definition)
    tests = _tests(criteria, oval) if criteria is not None else []
    return tests is None or any(test in oval.dpkg_tests for test in tests)


def platform_applicability(datastream: Path, rule_ids: set[str], cpe_oval_results: list[Path],
                           installed: set[str] | None) -> dict[str, bool | None]:
    """For each rule of `rule_ids` whose CPE platform depends on a dpkg fact: does it apply to the
    image? (True/False, None when it cannot be decided). Rules without such a platform are absent."""
    oval = _Oval()
    oscap_results: dict[str, str] = {}
    for path in cpe_oval_results:
        part = _read_definitions(path)
        oval.criteria.update(part.criteria)
        oval.dpkg_tests.update(part.dpkg_tests)
        oval.dpkg_objects.update(part.dpkg_objects)
        oscap_results.update(_definition_results(path))
    checks: dict[str, str] = {}
    platforms: dict[str, ET.Element] = {}
    rule_platforms: dict[str, list[str]] = {}
    group_platforms: dict[str, list[str]] = {}
    rule_groups: dict[str, tuple[str, ...]] = {}
    groups: list[str] = []
    for event, element in ET.iterparse(datastream, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == f"{{{_XCCDF}}}Group":
                groups.append(element.get("id", ""))
            elif tag == f"{{{_XCCDF}}}Rule" and element.get("id") in rule_ids:
                rule_groups[element.get("id", "")] = tuple(groups)
            continue
        if tag == f"{{{_XCCDF}}}Group":
            group_platforms[groups.pop()] = [p.get("idref", "") for p in element.findall(f"{{{_XCCDF}}}platform")]
            element.clear()
        elif tag == f"{{{_CPE_DICT}}}cpe-item":
            check = element.find(f"{{{_CPE_DICT}}}check")
            if check is not None and check.text:
                checks[element.get("name", "")] = check.text.strip()
            element.clear()
        elif tag == f"{{{_CPE_LANG}}}platform" and element.get("id"):
            platforms["#" + element.get("id", "")] = element
        elif tag == f"{{{_XCCDF}}}Rule":
            if element.get("id") in rule_ids:
                rule_platforms[element.get("id", "")] = [p.get("idref", "") for p in
                                                         element.findall(f"{{{_XCCDF}}}platform")]
            element.clear()

    def fact(name: str) -> tuple[bool | None, bool]:
        definition = checks.get(name, "")
        if not definition:
            return None, False
        if _uses_dpkg(definition, oval):
            criteria = oval.criteria.get(definition)
            value = _evaluate(criteria, oval, installed) if criteria is not None and installed is not None else None
            return value, True
        return {"true": True, "false": False}.get(oscap_results.get(definition, "")), False

    def logical(node: ET.Element) -> tuple[bool | None, bool]:
        if node.tag == f"{{{_CPE_LANG}}}fact-ref":
            return fact(node.get("name", ""))
        parts = [logical(child) for child in node if child.tag in (f"{{{_CPE_LANG}}}logical-test",
                                                                  f"{{{_CPE_LANG}}}fact-ref")]
        uses_dpkg = any(dpkg for _, dpkg in parts)
        values = [value for value, _ in parts]
        if not values or None in values:
            return None, uses_dpkg
        result = all(values) if node.get("operator", "AND").upper() == "AND" else any(values)
        return (not result if node.get("negate", "false") == "true" else result), uses_dpkg

    def any_platform(idrefs: list[str]) -> tuple[bool | None, bool]:
        """XCCDF: an item applies when any of its platforms matches (no platform: it applies)."""
        if not idrefs:
            return True, False
        outcomes = []
        for idref in idrefs:
            platform = platforms.get(idref)
            test = platform.find(f"{{{_CPE_LANG}}}logical-test") if platform is not None else None
            outcomes.append(logical(test) if test is not None else (None, False))
        values = [value for value, _ in outcomes]
        return (True if True in values else (None if None in values else False)), any(d for _, d in outcomes)

    decided: dict[str, bool | None] = {}
    for rule_id, idrefs in rule_platforms.items():
        # the rule's own platforms and those of every enclosing group must all apply
        levels = [any_platform(idrefs)] + [any_platform(group_platforms.get(group, []))
                                           for group in rule_groups.get(rule_id, ())]
        if not any(dpkg for _, dpkg in levels):
            continue
        values = [value for value, _ in levels]
        decided[rule_id] = False if False in values else (None if None in values else True)
    return decided
