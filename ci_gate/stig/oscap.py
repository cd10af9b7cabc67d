"""OpenSCAP and the SCAP Security Guide: find them, pick the content for a distro, run, parse.

oscap and SSG are external tools (Debian packages `openscap-scanner` and `ssg-*`). ci-gate runs
`oscap xccdf eval` against a materialised root filesystem with OSCAP_PROBE_ROOT, the way
`oscap-chroot` does, and reads the XCCDF results document (which embeds the evaluated benchmark,
so the DISA references and texts come from the exact content that produced the results).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ci_gate.errors import AnalysisError, UsageError
from ci_gate.stig.model import PROFILE_PREFIX, StigRule

SSG_CONTENT_DIR = Path(os.environ.get("CI_GATE_SSG_CONTENT", "/usr/share/xml/scap/ssg/content"))
INSTALL_HINT = "apt-get install openscap-scanner ssg-base ssg-debian ssg-debderived ssg-nondebian"
STIG_PROFILE = PROFILE_PREFIX + "stig"
STANDARD_PROFILE = PROFILE_PREFIX + "standard"
_XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
_CCI = re.compile(r"^CCI-\d+$")
_SRG = re.compile(r"^SRG-[A-Z]+-\d+")
_SV = re.compile(r"^SV-(\d+)r\d+_rule$")
MAX_FIX_SCRIPT = 4000


@dataclass(frozen=True, slots=True)
class Content:
    datastream: Path
    profile: str
    product: str


def oscap_binary() -> str:
    found = shutil.which("oscap")
    if found is None:
        raise AnalysisError(f"oscap (OpenSCAP) is not installed; install it with: {INSTALL_HINT}")
    return found


def oscap_version(binary: str) -> tuple[int, ...]:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    found = re.search(r"\(oscap\)\s+(\d+(?:\.\d+)+)", result.stdout)
    if found is None:
        raise AnalysisError(f"{binary} --version did not print an OpenSCAP version; reinstall it with: "
                            f"{INSTALL_HINT}")
    return tuple(int(part) for part in found.group(1).split("."))


def product_for(os_release: dict[str, str]) -> tuple[str, str] | None:
    """The SSG product and default profile for an os-release, or None when SSG has no STIG for it."""
    distro = os_release.get("ID", "")
    version = os_release.get("VERSION_ID", "")
    major = version.split(".")[0]
    if distro in ("rhel", "centos", "ol", "almalinux", "rocky") and major in ("7", "8", "9"):
        product = {"rhel": "rhel", "ol": "ol", "centos": "centos"}.get(distro, "rhel")
        return f"{product}{major}", STIG_PROFILE
    if distro in ("sles", "sled", "sle") and major in ("12", "15"):
        return f"sle{major}", STIG_PROFILE
    if distro == "ubuntu" and version in ("20.04", "22.04"):
        return f"ubuntu{version.replace('.', '')}", STIG_PROFILE
    if distro == "debian" and major.isdigit():
        # DISA publishes no Debian STIG: the Debian content's `standard` profile is the baseline.
        return f"debian{major}", STANDARD_PROFILE
    return None


def choose_content(os_release: dict[str, str], profile: str, datastream: Path | None) -> Content:
    """The datastream and profile to evaluate, from the flags or the image's distribution."""
    wanted_profile = "" if profile in ("", "auto") else profile
    if wanted_profile and not wanted_profile.startswith("xccdf_"):
        wanted_profile = PROFILE_PREFIX + wanted_profile
    detected = product_for(os_release)
    if datastream is None:
        if detected is None:
            name = os_release.get("PRETTY_NAME") or os_release.get("ID") or "an unknown distribution"
            raise UsageError(f"no SCAP Security Guide STIG content is known for {name}; pass --datastream "
                             "FILE and --profile ID (see docs/stig.md)")
        datastream = SSG_CONTENT_DIR / f"ssg-{detected[0]}-ds.xml"
        if not datastream.is_file():
            if not SSG_CONTENT_DIR.is_dir():
                raise AnalysisError(f"the SCAP Security Guide content is not installed ({SSG_CONTENT_DIR} is "
                                    f"missing); install it with: {INSTALL_HINT}")
            raise AnalysisError(f"the installed SCAP Security Guide has no content for {detected[0]} "
                                f"({datastream.name} is not in {SSG_CONTENT_DIR}); install a newer ssg "
                                "package or pass --datastream FILE")
    elif not datastream.is_file():
        what = ("is a folder" if datastream.is_dir() else "is not a regular file" if datastream.exists()
                else "does not exist")
        raise UsageError(f"--datastream {datastream} {what}: give a SCAP source datastream file (e.g. "
                         f"{SSG_CONTENT_DIR}/ssg-rhel8-ds.xml)")
    else:
        datastream = datastream.absolute()  # oscap runs in its own working directory
    product = detected[0] if detected else datastream.name.removeprefix("ssg-").removesuffix("-ds.xml")
    if not wanted_profile:
        if detected is None:
            raise UsageError("--profile is needed with --datastream for an image whose distribution has no "
                             "default profile; list them with `oscap info FILE`")
        wanted_profile = detected[1]
    return Content(datastream, wanted_profile, product)


def run_eval(binary: str, content: Content, root: str, results: Path) -> subprocess.CompletedProcess[str]:
    """`oscap xccdf eval` of `root` (exit 0: all passed, 2: some failed, anything else: an error)."""
    # The rpminfo probe opens the rpm database at the %_dbpath of the host's rpm configuration
    # (Debian's rpm: ~/.rpmmacros, default /root/.rpmdb); RPM-based images keep it at /var/lib/rpm,
    # so oscap gets a private HOME whose .rpmmacros points there (resolved under the probe root).
    home = results.parent / "home"
    home.mkdir(exist_ok=True)
    (home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    env = {**os.environ, "HOME": str(home), "OSCAP_PROBE_ROOT": root, "OSCAP_EVALUATION_TARGET": f"chroot://{root}"}
    command = [binary, "xccdf", "eval", "--profile", content.profile, "--results", str(results),
               "--oval-results", str(content.datastream)]
    # --oval-results writes <oval file>.result.xml into the working directory: the evidence source.
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                               stdin=subprocess.DEVNULL, cwd=results.parent)
    if completed.returncode not in (0, 2) or not results.is_file():
        detail = next((line.strip() for line in completed.stderr.splitlines() if line.strip()),
                      f"exit code {completed.returncode}")
        if "profile" in detail.lower():
            # oscap's own hint ("Get available profiles using:") continues on a line not kept here
            detail = detail.split(" Get available profiles")[0].rstrip(". ")
            raise UsageError(f"oscap cannot evaluate profile {content.profile} of {content.datastream.name}: "
                             f"{detail[:200]}; list the profiles with `oscap info {content.datastream}`")
        raise AnalysisError(f"oscap could not evaluate {content.datastream.name}: {detail[:200]}")
    return completed


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return re.sub(r"[ \t]+", " ", "".join(element.itertext())).strip()


@dataclass(slots=True)
class ParsedResults:
    benchmark_id: str
    benchmark_title: str
    benchmark_version: str
    profile_title: str
    rules: list[StigRule]


def parse_results(path: Path, profile: str) -> ParsedResults:
    """The selected rules of an XCCDF 1.2 results document with their DISA references."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as error:
        raise AnalysisError(f"oscap wrote results that are not XML ({error})") from None
    benchmark = tree.getroot()
    definitions: dict[str, ET.Element] = {rule.get("id", ""): rule for rule in benchmark.iter(f"{_XCCDF}Rule")}
    profile_title = ""
    for element in benchmark.iter(f"{_XCCDF}Profile"):
        if element.get("id") == profile:
            profile_title = _text(element.find(f"{_XCCDF}title"))
    test_results = list(benchmark.iter(f"{_XCCDF}TestResult"))
    if not test_results:
        raise AnalysisError(f"oscap's results in {path.name} have no TestResult")
    rules: list[StigRule] = []
    for result in test_results[-1].iter(f"{_XCCDF}rule-result"):
        outcome = _text(result.find(f"{_XCCDF}result"))
        if outcome == "notselected":
            continue
        rule_id = result.get("idref", "")
        rules.append(_rule(rule_id, outcome, result, definitions.get(rule_id)))
    failing = {rule.check_ref for rule in rules if rule.result == "fail" and rule.check_ref}
    found: dict[str, str] = {}
    for oval_results in sorted(path.parent.glob("*.result.xml")):
        if "cpe-oval" not in oval_results.name:  # the platform checks' results carry no rule evidence
            found.update(oval_evidence(oval_results, failing - set(found)))
    rules = [dataclasses.replace(rule, evidence=f"{rule.evidence}; looked at: {found[rule.check_ref]}")
             if rule.result == "fail" and rule.check_ref in found else rule for rule in rules]
    return ParsedResults(benchmark.get("id", ""), _text(benchmark.find(f"{_XCCDF}title")),
                         _text(benchmark.find(f"{_XCCDF}version")), profile_title, rules)


def _rule(rule_id: str, outcome: str, result: ET.Element, definition: ET.Element | None) -> StigRule:
    severity = result.get("severity") or (definition.get("severity") if definition is not None else "") or "unknown"
    ccis: list[str] = []
    srgs: list[str] = []
    vuln_id = sv_rule_id = stig_rule_ver = ""
    title = description = rationale = check_ref = ""
    if definition is not None:
        title = _text(definition.find(f"{_XCCDF}title"))
        description = _text(definition.find(f"{_XCCDF}description"))
        rationale = _text(definition.find(f"{_XCCDF}rationale"))
        for reference in definition.iter(f"{_XCCDF}reference"):
            value = _text(reference)
            href = reference.get("href", "")
            sv = _SV.match(value)
            if _CCI.match(value):
                ccis.append(value)
            elif _SRG.match(value):
                srgs.append(value)
            elif sv:
                sv_rule_id, vuln_id = value, f"V-{sv.group(1)}"
            elif "unix-linux" in href and "cyber.mil" in href:
                stig_rule_ver = value
    fix_text = fix_script = ""
    if definition is not None:
        fix_text = _text(definition.find(f"{_XCCDF}fixtext")) or description
        for fix in definition.iter(f"{_XCCDF}fix"):
            if fix.get("system") == "urn:xccdf:fix:script:sh":
                fix_script = "".join(fix.itertext()).strip()[:MAX_FIX_SCRIPT]
    for check in result.iter(f"{_XCCDF}check-content-ref"):
        check_ref = check.get("name", "")
    messages = [_text(message) for message in result.iter(f"{_XCCDF}message")]
    evidence = f"oscap result: {outcome}"
    if check_ref:
        evidence += f"; decided by {check_ref}"
    if messages:
        evidence += "; " + "; ".join(messages)[:1000]
    return StigRule(rule_id, title, outcome, severity, vuln_id, sv_rule_id, stig_rule_ver, tuple(ccis),
                    tuple(srgs), description, rationale, check_ref, evidence, fix_text, fix_script)


_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
_MODE_BITS = (("uread", "r"), ("uwrite", "w"), ("uexec", "x"), ("gread", "r"), ("gwrite", "w"), ("gexec", "x"),
              ("oread", "r"), ("owrite", "w"), ("oexec", "x"))
MAX_EVIDENCE_ITEMS = 8


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _item_summary(item: ET.Element) -> str:
    """One line for an OVAL system-characteristics item: the file, line or package that was looked at."""
    from ci_gate.redaction import redact_text

    fields = {_local(child.tag): (child.text or "").strip() for child in item}
    kind = _local(item.tag).removesuffix("_item")
    path = fields.get("filepath") or (fields.get("path", "").rstrip("/") + "/" + fields.get("filename", "")).rstrip("/")
    if kind == "file" or "uread" in fields:
        mode = "".join(letter if fields.get(bit) == "true" else "-" for bit, letter in _MODE_BITS)
        special = [name for name in ("suid", "sgid", "sticky") if fields.get(name) == "true"]
        return (f"{path or '?'} ({fields.get('type', 'file')}, uid {fields.get('user_id', '?')}, gid "
                f"{fields.get('group_id', '?')}, mode {mode}{' ' + '+'.join(special) if special else ''})")
    if kind.startswith("textfilecontent"):
        text = fields.get("text", "")
        if path in _SECRET_FILES:
            text = "(line content not shown)"
        return f"{path}: {redact_text(text)[:200]}"
    if "extended_name" in fields or kind in ("rpminfo", "dpkginfo"):
        return f"package {fields.get('extended_name') or fields.get('name', '?')} installed"
    shown = ", ".join(f"{name}={value[:80]}" for name, value in fields.items()
                      if value and not name.endswith("_time"))
    return redact_text(f"{kind}: {shown}")[:300]


def oval_evidence(arf: Path, definition_ids: set[str]) -> dict[str, str]:
    """For each wanted OVAL definition: the items its tests looked at, from an OVAL results file."""
    if not definition_ids or not arf.is_file():
        return {}
    definition_tests: dict[str, list[str]] = {}
    definition_extends: dict[str, list[str]] = {}
    test_items: dict[str, list[str]] = {}
    items: dict[str, ET.Element] = {}
    wanted_items: set[str] | None = None
    try:
        for _, element in ET.iterparse(arf, events=("end",)):
            name = _local(element.tag)
            if name == "definition" and element.get("definition_id"):
                definition_id = element.get("definition_id", "")
                definition_tests[definition_id] = [c.get("test_ref", "") for c in element.iter()
                                                   if _local(c.tag) == "criterion"]
                definition_extends[definition_id] = [c.get("definition_ref", "") for c in element.iter()
                                                     if _local(c.tag) == "extend_definition"]
                element.clear()
            elif name == "test" and element.get("test_id"):
                test_items[element.get("test_id", "")] = [c.get("item_id", "") for c in element
                                                          if _local(c.tag) == "tested_item"]
                element.clear()
                wanted_items = None  # a file may hold several result sets: recompute at the next item
            elif name.endswith("_item") and element.get("id"):
                if wanted_items is None:
                    wanted_items = {item for definition in definition_ids
                                    for test in _tests_of(definition, definition_tests, definition_extends)
                                    for item in test_items.get(test, [])}
                if element.get("id") in wanted_items:
                    items[element.get("id", "")] = element
                else:
                    element.clear()
    except ET.ParseError:
        return {}
    evidence: dict[str, str] = {}
    for definition in definition_ids:
        if definition not in definition_tests:
            continue
        lines: list[str] = []
        for test in _tests_of(definition, definition_tests, definition_extends):
            found = test_items.get(test, [])
            if not found:
                lines.append(f"nothing matched {test}")
            lines.extend(_item_summary(items[item]) for item in found if item in items)
        if lines:
            more = f" (+{len(lines) - MAX_EVIDENCE_ITEMS} more)" if len(lines) > MAX_EVIDENCE_ITEMS else ""
            evidence[definition] = "; ".join(lines[:MAX_EVIDENCE_ITEMS]) + more
    return evidence


def _tests_of(definition: str, tests: dict[str, list[str]], extends: dict[str, list[str]],
              depth: int = 0) -> list[str]:
    found = list(tests.get(definition, []))
    if depth < 8:
        for extended in extends.get(definition, []):
            found.extend(_tests_of(extended, tests, extends, depth + 1))
    return found
