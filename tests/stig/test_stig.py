"""`ci-gate stig` with the real oscap and SCAP Security Guide content, and checklists read back by
STIG Manager's own parsers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ci_gate.sources import open_image
from ci_gate.sources.interface import Limits
from ci_gate.stig.checklists import ASSET_ORDER, CKL_STATUSES, STIG_DATA_ORDER
from ci_gate.stig.rootfs import materialized_image
from tests.support import oci
from tests.support.oci import TarItem

SSG = Path("/usr/share/xml/scap/ssg/content")
DEBIAN11_DS = SSG / "ssg-debian11-ds.xml"
STANDARD = "xccdf_org.ssgproject.content_profile_standard"
RULE = "xccdf_org.ssgproject.content_rule_"
HASH = "Zm9vYmFyU2VjcmV0SGFzaFZhbHVlRG9Ob3RMZWFr"
"""A password hash planted in /etc/shadow: it must appear in no output."""
TELNETD_STANZA = (b"\nPackage: telnetd\nStatus: install ok installed\nPriority: optional\nSection: net\n"
                  b"Architecture: amd64\nSource: netkit-telnet\nVersion: 0.17+2.4-2\n"
                  b"Description: basic telnet server\n")
CLIENT_MODULES = Path(os.environ.get("CI_GATE_TOOLS", Path.home() / ".cache/ci-gate-tools")) / \
    "node_modules/@nuwcdivnpt/stig-manager-client-modules"

pytestmark = pytest.mark.skipif(shutil.which("oscap") is None or not DEBIAN11_DS.is_file(),
                                reason="oscap / ssg-debian not installed (.ci/run installs them)")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI_GATE_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)


@pytest.fixture(scope="module")
def planted_image(debian_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real bookworm rootfs relabelled as Debian 11 (so the Debian 11 content's platform check,
    which reads /etc/debian_version, applies) with outcomes set up on purpose: /etc/shadow mode 0644
    and /etc/gshadow owned by uid 1000 (the Debian profiles have no world-writable rule; the RHEL 8
    fixture covers that)."""
    planted = [
        TarItem("etc/debian_version", b"11.9\n"),
        TarItem("etc/shadow", b"root:$6$saltsalt$" + HASH.encode() + b":19000:0:99999:7:::\n", mode=0o644, gid=42),
        TarItem("etc/gshadow", b"root:*::\n", mode=0o640, uid=1000, gid=42),
        # telnetd installed on purpose: oscap 1.3.7 reads the host's dpkg database, ci-gate the image's
        TarItem("var/lib/dpkg/status", _member(debian_rootfs, "var/lib/dpkg/status") + TELNETD_STANZA),
    ]
    out = tmp_path_factory.mktemp("stig") / "oci"
    oci.build_oci_layout(out, [debian_rootfs, planted], tag="planted")
    return f"oci-dir:{out}"


def _member(archive: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile(name) or tar.extractfile("./" + name)
        assert member is not None
        return member.read()


def _by_hand(image: str, datastream: Path, profile: str) -> dict[str, str]:
    """oscap run directly on the same materialised tree: rule id -> result."""
    with materialized_image(open_image(image), Limits()) as rootfs, tempfile.TemporaryDirectory() as work:
        results = Path(work) / "r.xml"
        # By hand as docs/stig.md says: Debian's rpm looks for the rpmdb in ~/.rpmdb unless told.
        (Path(work) / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
        env = {**os.environ, "OSCAP_PROBE_ROOT": rootfs.path, "HOME": work}
        subprocess.run(["oscap", "xccdf", "eval", "--profile", profile, "--results", str(results), str(datastream)],
                       env=env, capture_output=True, check=False)
        text = results.read_text()
    found = re.findall(r'<rule-result idref="([^"]+)"[^>]*>\s*<result>([a-z]+)</result>', text)
    return {rule: result for rule, result in found if result != "notselected"}


def test_debian_profile_matches_oscap_by_hand_and_sets_up_outcomes(planted_image: str, tmp_path: Path) -> None:
    done = _cli("stig", planted_image, "--datastream", str(DEBIAN11_DS), "--profile", "standard",
                "--json", "out.json", "--ckl", "out.ckl", "--cklb", "out.cklb", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # open rules
    document = json.loads((tmp_path / "out.json").read_text())
    ours = {rule["rule_id"]: rule["result"] for rule in document["rules"]}
    by_hand = _by_hand(planted_image, DEBIAN11_DS, STANDARD)
    # oscap 1.3.7 answers package rules from the host's dpkg database: ci-gate re-decides exactly those
    redecided = {rule["rule_id"] for rule in document["rules"] if "dpkg" in rule["evidence"]}
    assert {r.removeprefix(RULE) for r in redecided} == {"package_telnetd_removed", "package_nis_removed",
                                                          "package_inetutils-telnetd_removed",
                                                          "package_telnetd-ssl_removed", "package_ntpdate_removed"}
    assert {r: v for r, v in ours.items() if r not in redecided} == \
        {r: v for r, v in by_hand.items() if r not in redecided}
    by_id = {rule["rule_id"]: rule for rule in document["rules"]}
    telnetd = by_id[RULE + "package_telnetd_removed"]
    assert telnetd["result"] == "fail" and "package telnetd installed" in telnetd["evidence"]
    assert ours[RULE + "package_nis_removed"] == "pass"  # not in the image (whatever the host has)
    assert ours[RULE + "package_cron_installed"] == "notapplicable"  # a machine-only rule, not for containers
    assert "decided 5 package rules from the image's /var/lib/dpkg/status" in done.stderr
    assert ours[RULE + "file_permissions_etc_shadow"] == "fail"
    assert ours[RULE + "file_owner_etc_gshadow"] == "fail"
    assert ours[RULE + "file_owner_etc_passwd"] == "pass"
    assert ours[RULE + "file_permissions_etc_gshadow"] == "pass"
    counts = document["counts"]
    assert counts["fail"] >= 2 and counts["pass"] >= 1
    shadow = next(r for r in document["rules"] if r["rule_id"] == RULE + "file_permissions_etc_shadow")
    assert shadow["category"] == "CAT II" and shadow["ckl_status"] == "Open"
    assert "CCI-002223" in shadow["ccis"]
    assert "/etc/shadow (regular, uid 0, gid 42, mode rw-r--r--)" in shadow["evidence"]  # what decided it
    for output in ("out.json", "out.ckl", "out.cklb"):
        assert HASH not in (tmp_path / output).read_text()
    assert "Debian 11" in done.stdout or "DEBIAN-11" in done.stdout
    assert "dpkg" in done.stderr  # oscap 1.3.7's dpkg probe warning
    _check_ckl(tmp_path / "out.ckl", ours)
    _check_with_stig_manager(tmp_path / "out.ckl", tmp_path / "out.cklb", document, "DEBIAN-11_standard")


def _check_ckl(path: Path, ours: dict[str, str]) -> None:
    root = ET.parse(path).getroot()
    asset = root.find("ASSET")
    assert asset is not None
    assert [child.tag for child in asset] == list(ASSET_ORDER)
    assert asset.findtext("ROLE") == "None" and asset.findtext("HOST_NAME")
    info = {si.findtext("SID_NAME"): si.findtext("SID_DATA") for si in root.iter("SI_DATA")}
    assert info["stigid"] == "DEBIAN-11_standard"
    vulns = list(root.iter("VULN"))
    assert len(vulns) == len(ours)  # the Debian content has no DISA ids: one VULN per SSG rule
    expected_status = {"pass": "NotAFinding", "fail": "Open", "notapplicable": "Not_Applicable"}
    for vuln in vulns:
        names = [data.findtext("VULN_ATTRIBUTE") for data in vuln.findall("STIG_DATA")]
        assert names[:len(STIG_DATA_ORDER)] == list(STIG_DATA_ORDER)
        assert set(names[len(STIG_DATA_ORDER):]) <= {"CCI_REF", "LEGACY_ID"}
        assert [child.tag for child in vuln][-5:] == ["STATUS", "FINDING_DETAILS", "COMMENTS",
                                                       "SEVERITY_OVERRIDE", "SEVERITY_JUSTIFICATION"]
        status = vuln.findtext("STATUS")
        assert status in CKL_STATUSES
        data = dict(zip(names, [d.findtext("ATTRIBUTE_DATA") or "" for d in vuln.findall("STIG_DATA")], strict=True))
        assert status == expected_status.get(ours[RULE + data["Rule_Ver"]], "Not_Reviewed")
        assert 0 < len(data["Rule_ID"]) <= 45  # an empty or missing Rule_ID fails, as before
        assert "ci-gate" in (vuln.findtext("COMMENTS") or "") and "sha256:" in (vuln.findtext("COMMENTS") or "")


NODE_READER = """
const fs = require('fs');
const m = require(process.argv[2]);
const opts = {importOptions: {autoStatus: 'saved', unreviewed: 'commented', unreviewedCommented: 'informational',
  emptyDetail: 'replace', emptyComment: 'ignore', allowCustom: true}, fieldSettings: {detail: {enabled: 'always',
  required: 'always'}, comment: {enabled: 'findings', required: 'findings'}}, allowAccept: true, importRules: true};
const out = {};
for (const [fn, file] of [['reviewsFromCkl', process.argv[3]], ['reviewsFromCklb', process.argv[4]]]) {
  const r = m[fn]({data: fs.readFileSync(file, 'utf8'), ...opts, sourceRef: file});
  out[fn] = {target: r.target.name, checklists: r.checklists.map(c => ({benchmarkId: c.benchmarkId,
    reviews: c.reviews.map(v => [v.ruleId, v.result])}))};
}
console.log(JSON.stringify(out));
"""


def _expected_reviews(document: dict[str, Any]) -> dict[str, str]:
    """What STIG Manager should import: one review per DISA rule (the SSG rule id when there is none),
    fail if any SSG rule behind it failed, informational when one was not decided (Not_Reviewed)."""
    groups: dict[str, list[str]] = {}
    for rule in document["rules"]:
        short = rule["rule_id"].removeprefix(RULE)
        key = rule["sv_rule_id"] or (short if len(short) <= 45 else short[:36])
        groups.setdefault(key, []).append(rule["result"])
    expected = {}
    for rule_id, results in groups.items():
        if "fail" in results:
            expected[rule_id] = "fail"
        elif set(results) - {"pass", "notapplicable"}:
            expected[rule_id] = "informational"
        elif set(results) == {"notapplicable"}:
            expected[rule_id] = "notapplicable"
        else:
            expected[rule_id] = "pass"
    return expected


def stig_manager_reviews(ckl: Path, cklb: Path) -> dict[str, Any]:
    """The .ckl and .cklb as STIG Manager's own parsers (reviewsFromCkl / reviewsFromCklb) read them."""
    if not CLIENT_MODULES.is_dir() and os.environ.get("CI") != "true":
        pytest.skip("@nuwcdivnpt/stig-manager-client-modules not installed (.ci/run installs it)")
    script = ckl.parent / "read.js"
    script.write_text(NODE_READER)
    done = subprocess.run(["node", str(script), str(CLIENT_MODULES), str(ckl), str(cklb)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _check_with_stig_manager(ckl: Path, cklb: Path, document: dict[str, Any], benchmark: str) -> None:
    parsed = stig_manager_reviews(ckl, cklb)
    expected = _expected_reviews(document)
    for reader in ("reviewsFromCkl", "reviewsFromCklb"):
        assert parsed[reader]["target"] == document["image"]
        checklists = parsed[reader]["checklists"]
        assert len(checklists) == 1 and checklists[0]["benchmarkId"] == benchmark
        reviews = {rule_id if rule_id.startswith("SV-") or len(rule_id) <= 36 else rule_id[:36]: result
                   for rule_id, result in checklists[0]["reviews"]}
        assert reviews == expected, reader


def test_real_bookworm_image_without_matching_content_is_not_evaluated(debian_oci: oci.OciImage,
                                                                        tmp_path: Path) -> None:
    auto = _cli("stig", f"oci-dir:{debian_oci.path}", "--ckl", "x.ckl", cwd=tmp_path)
    assert auto.returncode == 2 and "debian12" in auto.stderr and len(auto.stderr.strip().splitlines()) == 1
    wrong = _cli("stig", f"oci-dir:{debian_oci.path}", "--datastream", str(DEBIAN11_DS), "--profile", "standard",
                 "--ckl", "x.ckl", cwd=tmp_path)
    assert wrong.returncode == 2 and "notapplicable" in wrong.stderr
    assert not (tmp_path / "x.ckl").exists()


def test_missing_oscap_is_one_line_with_the_install_command(tmp_path: Path, debian_oci: oci.OciImage) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "ci_gate.cli", "stig", f"oci-dir:{debian_oci.path}"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    assert "apt-get install openscap-scanner" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_hostile_entries_stay_inside_and_the_tree_is_removed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched\n")
    layers = [[
        TarItem("etc/", kind="dir", mode=0o755),
        TarItem("etc/link", kind="symlink", link_target=str(outside)),
        TarItem("escape", kind="symlink", link_target="../../../../../../" + str(outside).lstrip("/")),
    ], [
        TarItem("etc/link/victim", b"overwritten\n"),
        TarItem("etc/link/new", b"created\n"),
        TarItem("escape/new2", b"created\n"),
        TarItem("../../outside/victim", b"overwritten\n"),
        TarItem("dev/sda", kind="block", device_major=8, device_minor=0),
        TarItem("dev/null", kind="char", device_major=1, device_minor=3),
        TarItem("dev/fifo", kind="fifo"),
        TarItem("opt/zeros", bytes(24 * 1024 * 1024) + b"end"),
        TarItem("bin/su", b"\x7fELF", mode=0o4755),
    ]]
    image = oci.build_oci_layout(tmp_path / "oci", layers, tag="hostile")
    work = tmp_path / "work"
    work.mkdir()
    with materialized_image(open_image(f"oci-dir:{image.path}"), Limits(), parent_dir=str(work)) as rootfs:
        root = Path(rootfs.path)
        assert (root / ".dockerenv").is_file()
        assert not (root / "dev/sda").exists() and not (root / "dev/null").exists()
        assert not os.path.lexists(root / "dev/fifo")
        assert os.readlink(root / "etc/link") == str(outside)
        zeros = os.stat(root / "opt/zeros")
        assert zeros.st_size == 24 * 1024 * 1024 + 3
        assert zeros.st_blocks * 512 < 1024 * 1024  # holes, not 24 MiB of zeros
        assert os.stat(root / "bin/su").st_mode & 0o7777 == 0o4755
        assert any("etc/link/victim" in line for line in rootfs.skipped)
        assert (root / "outside/victim").read_text() == "overwritten\n"  # `..` was kept inside the root
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "untouched\n"
    assert list(work.iterdir()) == []


def test_tree_is_removed_on_interrupt(tmp_path: Path, tiny_oci: oci.OciImage) -> None:
    with pytest.raises(KeyboardInterrupt), materialized_image(open_image(f"oci-dir:{tiny_oci.path}"), Limits(),
                                                              parent_dir=str(tmp_path)):
        assert len(list(tmp_path.iterdir())) == 1
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_rhel8_stig_on_an_rpm_fixture(rhel8_image: str, tmp_path: Path) -> None:
    done = _cli("stig", rhel8_image, "--json", "out.json", "--ckl", "out.ckl", "--cklb", "out.cklb", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["profile_id"] == "xccdf_org.ssgproject.content_profile_stig"  # picked from os-release
    assert document["datastream"].endswith("ssg-rhel8-ds.xml")
    ours = {rule["rule_id"]: rule["result"] for rule in document["rules"]}
    assert ours == _by_hand(rhel8_image, SSG / "ssg-rhel8-ds.xml", "xccdf_org.ssgproject.content_profile_stig")
    by_id = {rule["rule_id"]: rule for rule in document["rules"]}
    telnet = by_id[RULE + "package_telnet-server_removed"]  # read from the fixture's real rpmdb
    assert telnet["result"] == "fail" and telnet["category"] == "CAT I"
    assert (telnet["vuln_id"], telnet["stig_rule_ver"]) == ("V-230487", "RHEL-08-040000")
    assert telnet["sv_rule_id"].startswith("SV-230487r") and "CCI-000381" in telnet["ccis"]
    sticky = by_id[RULE + "dir_perms_world_writable_sticky_bits"]
    assert sticky["result"] == "fail" and sticky["vuln_id"] == "V-230243"
    assert "/srv/shared (directory, uid 0, gid 0, mode rwxrwxrwx)" in sticky["evidence"]
    assert "package telnet-server-0:0.17-1.el8.noarch installed" in telnet["evidence"]
    assert document["open_by_category"]["CAT I"] >= 1
    assert "V-230487 RHEL-08-040000" in done.stdout
    _check_with_stig_manager(tmp_path / "out.ckl", tmp_path / "out.cklb", document, "RHEL-8_stig")
    unknown = _cli("stig", rhel8_image, "--profile", "no_such_profile", "--ckl", "u.ckl", cwd=tmp_path)
    assert unknown.returncode == 2 and "no_such_profile" in unknown.stderr and not (tmp_path / "u.ckl").exists()
    assert unknown.stderr.count("ci-gate: error:") == 1
    vulns = {v.findtext("STIG_DATA/ATTRIBUTE_DATA"): v for v in ET.parse(tmp_path / "out.ckl").getroot().iter("VULN")}
    assert vulns["V-230487"].findtext("STATUS") == "Open"
    assert "package_telnet-server_removed" in (vulns["V-230487"].findtext("FINDING_DETAILS") or "")


def test_sigterm_during_materialisation_removes_the_tree(debian_oci: oci.OciImage, tmp_path: Path) -> None:
    import signal
    import time

    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "CI_GATE_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "stig", f"oci-dir:{debian_oci.path}",
                                "--datastream", str(DEBIAN11_DS), "--profile", "standard"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(temp.glob("ci-gate-stig-*/rootfs/usr")):
        time.sleep(0.05)
    assert any(temp.glob("ci-gate-stig-*")), "materialisation never started"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr  # the CLI's interrupt (README: SIGTERM exits 143), not killed
    assert stderr.splitlines()[-1] == "ci-gate: interrupted", stderr
    assert list(temp.iterdir()) == []


def test_image_budget_bounds_what_is_written(tmp_path: Path) -> None:
    from ci_gate.errors import LimitExceededError

    image = oci.build_oci_layout(tmp_path / "oci", [[TarItem("big", bytes(range(256)) * 65536)]], tag="big")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(LimitExceededError), materialized_image(
            open_image(f"oci-dir:{image.path}"), Limits(max_image_bytes=4 * 1024 * 1024), parent_dir=str(work)):
        pass
    assert list(work.iterdir()) == []


def _sparse_layer_tar(path: Path, member: str, size: int) -> Path:
    """A layer tar holding one `size`-byte file of zeros, itself sparse on disk (nothing is written)."""
    import tarfile

    info = tarfile.TarInfo(member)
    info.size = size
    info.mode = 0o644
    with path.open("wb") as out:
        out.write(info.tobuf(format=tarfile.PAX_FORMAT))
        out.seek(out.tell() + (size + 511) // 512 * 512)
        out.write(bytes(1024))  # the end-of-archive blocks
    return path


def _zeros_image(size: int) -> Path:
    """An OCI layout with /etc/hostname and a `size`-byte file of zeros in a zstd layer (~350 KiB for
    10 GiB), built once into the test cache: building it streams every byte through zstd and SHA-256."""
    from tests.support.cache import cached, key_of

    def build(target: Path) -> None:
        target.mkdir()
        layer = _sparse_layer_tar(target / "huge.tar", "opt/huge.img", size)
        oci.build_oci_layout(target / "oci", [[TarItem("etc/hostname", b"hostile\n")], layer], tag="huge",
                             compression="zstd")
        layer.unlink()

    key = key_of(oci.FORMAT_VERSION, size, "opt/huge.img", "etc/hostname", "zstd")
    return cached(f"stig-zeros-{key}", build, stale_prefix="stig-zeros-") / "oci"


def test_a_10_gib_file_of_zeros_costs_no_disk_and_the_tree_is_removed(tmp_path: Path) -> None:
    size = 10 * 1024**3
    image = _zeros_image(size)
    work = tmp_path / "work"
    work.mkdir()
    free_before = shutil.disk_usage(work).free
    with materialized_image(open_image(f"oci-dir:{image}"), Limits(), parent_dir=str(work)) as rootfs:
        huge = os.stat(Path(rootfs.path) / "opt/huge.img")
        assert huge.st_size == size
        assert huge.st_blocks * 512 < 1024 * 1024  # holes: not 10 GiB written
        assert rootfs.bytes_written == size + 8 and (Path(rootfs.path) / "etc/hostname").read_text() == "hostile\n"
        assert [p.name for p in work.iterdir()] == [Path(rootfs.path).parent.name]  # only our private dir
        assert free_before - shutil.disk_usage(work).free < 256 * 1024**2
    assert list(work.iterdir()) == []


def test_a_layer_compressed_twice_fails_like_the_analyzer_and_leaves_nothing(tmp_path: Path) -> None:
    import gzip
    import tarfile

    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "etc").mkdir()
    (inner / "etc/os-release").write_text("ID=debian\nVERSION_ID=11\n")
    plain = tmp_path / "layer.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(inner / "etc", arcname="etc")
    once = tmp_path / "once.tar"  # named .tar: build_oci_layout takes it verbatim and gzips it again
    once.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    image = oci.build_oci_layout(tmp_path / "oci", [once], tag="twice", compression="gzip")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "CI_GATE_CACHE_DIR": str(tmp_path / "cache")}
    runs = {command: subprocess.run([sys.executable, "-m", "ci_gate.cli", command, f"oci-dir:{image.path}",
                                     *(["--datastream", str(DEBIAN11_DS), "--profile", "standard", "--ckl",
                                        str(tmp_path / "x.ckl")] if command == "stig" else
                                       ["--output", "json", "--file", str(tmp_path / "x.json")])],
                                    capture_output=True, text=True, env=env, check=False, cwd=tmp_path)
            for command in ("analyze", "stig")}
    assert runs["analyze"].returncode == 2 and runs["stig"].returncode == 2
    # the same one-line diagnosis as the analyzer's, no checklist, no temp dir left
    assert runs["stig"].stderr.strip() == runs["analyze"].stderr.strip()
    assert len(runs["stig"].stderr.strip().splitlines()) == 1 and "layer 1" in runs["stig"].stderr
    assert not (tmp_path / "x.ckl").exists() and list(temp.iterdir()) == []


def _without_packages(status: bytes, names: set[str]) -> bytes:
    stanzas = status.decode().split("\n\n")
    kept = [stanza for stanza in stanzas if stanza.split("\n", 1)[0].removeprefix("Package: ") not in names]
    assert len(kept) == len(stanzas) - len(names)
    return "\n\n".join(kept).encode()


def test_package_platforms_follow_the_image_not_the_host(debian_rootfs: Path, tmp_path: Path) -> None:
    """The real bookworm rootfs labelled Ubuntu 22.04 (the content's platform check reads
    /etc/lsb-release), with `login` removed from its dpkg database on purpose and `libpam-runtime`
    kept. The CIS rules for login.defs (platform: package login installed) do not apply to it, the
    PAM ones do: ci-gate decides those platforms from the image's dpkg database, whatever oscap
    1.3.7's dpkg probe made of it (it answers from the host, or fails to initialise)."""
    status = _without_packages(_member(debian_rootfs, "var/lib/dpkg/status"), {"login"})
    labels = [TarItem("etc/lsb-release", b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"),
              TarItem("etc/os-release", b'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04"\n'),
              TarItem("var/lib/dpkg/status", status)]
    image = f"oci-dir:{oci.build_oci_layout(tmp_path / 'oci', [debian_rootfs, labels], tag='jammy').path}"
    done = _cli("stig", image, "--profile", "cis_level1_server", "--json", "out.json", "--ckl", "out.ckl", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    ours = {rule["rule_id"]: rule for rule in document["rules"]}
    for name in ("accounts_maximum_age_login_defs", "account_disable_post_pw_expiration"):
        assert ours[RULE + name]["result"] == "notapplicable", name
    for name in ("accounts_password_pam_retry", "accounts_password_pam_lcredit"):
        assert ours[RULE + name]["result"] in ("pass", "fail", "notchecked"), name  # applies: decided or flagged
    # everything that does not hang on a dpkg fact is exactly what oscap says on the same tree
    by_hand = _by_hand(image, SSG / "ssg-ubuntu2204-ds.xml", "xccdf_org.ssgproject.content_profile_cis_level1_server")
    differs = {rule for rule, result in by_hand.items() if ours[rule]["result"] != result}
    assert all("dpkg" in ours[rule]["evidence"] for rule in differs), differs
    vulns = {v.find("STIG_DATA[5]/ATTRIBUTE_DATA").text: v.findtext("STATUS")  # type: ignore[union-attr]
             for v in ET.parse(tmp_path / "out.ckl").getroot().iter("VULN")}
    assert vulns["accounts_maximum_age_login_defs"] == "Not_Applicable"
