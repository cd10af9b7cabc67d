"""The STIG result cache: a cached result is found before any layer is read, and every input that can
change a result misses it.

The content is a small real SCAP 1.3 source datastream composed by `oscap ds sds-compose` from two
file rules (each evaluation takes oscap well under a second, where the SSG Debian content takes
seconds); it is named like SSG's Debian 11 content so that `--profile auto` picks it from a content
folder, as it picks SSG's. Each test evaluates with the real oscap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ci_gate
from ci_gate.errors import SourceError, UsageError
from ci_gate.sources.interface import SourceOptions
from ci_gate.stig import oscap
from ci_gate.stig.evaluate import evaluate_image
from ci_gate.stig.model import StigEvaluation
from tests.support import oci
from tests.support.oci import TarItem

pytestmark = pytest.mark.skipif(shutil.which("oscap") is None, reason="oscap not installed (.ci/run installs it)")

RULE = "xccdf_org.ssgproject.content_rule_"
SHADOW_TITLE = "/etc/shadow is not world-readable"
XCCDF = f"""<?xml version="1.0" encoding="UTF-8"?>
<Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2" id="xccdf_org.ssgproject.content_benchmark_CI-GATE-TINY"
           resolved="1" xml:lang="en-US">
  <status>draft</status>
  <title>ci-gate cache test content</title>
  <description>Two file rules.</description>
  <version>1.0</version>
  <Profile id="xccdf_org.ssgproject.content_profile_standard">
    <title>Both rules</title>
    <description>Both rules.</description>
    <select idref="{RULE}file_permissions_etc_shadow" selected="true"/>
    <select idref="{RULE}file_owner_etc_passwd" selected="true"/>
  </Profile>
  <Profile id="xccdf_org.ssgproject.content_profile_shadow_only">
    <title>The shadow rule</title>
    <description>One rule.</description>
    <select idref="{RULE}file_permissions_etc_shadow" selected="true"/>
  </Profile>
  <Rule id="{RULE}file_permissions_etc_shadow" selected="false" severity="medium">
    <title>{SHADOW_TITLE}</title>
    <description>chmod o-rwx /etc/shadow</description>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5">
      <check-content-ref href="tiny-oval.xml" name="oval:org.ci-gate.tiny:def:1"/>
    </check>
  </Rule>
  <Rule id="{RULE}file_owner_etc_passwd" selected="false" severity="high">
    <title>/etc/passwd is owned by root</title>
    <description>chown root /etc/passwd</description>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5">
      <check-content-ref href="tiny-oval.xml" name="oval:org.ci-gate.tiny:def:2"/>
    </check>
  </Rule>
</Benchmark>
"""
OVAL = """<?xml version="1.0" encoding="UTF-8"?>
<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5"
                  xmlns:oval="http://oval.mitre.org/XMLSchema/oval-common-5"
                  xmlns:unix="http://oval.mitre.org/XMLSchema/oval-definitions-5#unix">
  <generator><oval:schema_version>5.11.2</oval:schema_version><oval:timestamp>2024-01-01T00:00:00</oval:timestamp>
  </generator>
  <definitions>
    <definition class="compliance" id="oval:org.ci-gate.tiny:def:1" version="1">
      <metadata><title>/etc/shadow mode</title><description>mode</description></metadata>
      <criteria><criterion test_ref="oval:org.ci-gate.tiny:tst:1" comment="shadow mode"/></criteria>
    </definition>
    <definition class="compliance" id="oval:org.ci-gate.tiny:def:2" version="1">
      <metadata><title>/etc/passwd owner</title><description>owner</description></metadata>
      <criteria><criterion test_ref="oval:org.ci-gate.tiny:tst:2" comment="passwd owner"/></criteria>
    </definition>
  </definitions>
  <tests>
    <unix:file_test check="all" check_existence="all_exist" id="oval:org.ci-gate.tiny:tst:1" version="1"
                    comment="shadow mode">
      <unix:object object_ref="oval:org.ci-gate.tiny:obj:1"/>
      <unix:state state_ref="oval:org.ci-gate.tiny:ste:1"/>
    </unix:file_test>
    <unix:file_test check="all" check_existence="all_exist" id="oval:org.ci-gate.tiny:tst:2" version="1"
                    comment="passwd owner">
      <unix:object object_ref="oval:org.ci-gate.tiny:obj:2"/>
      <unix:state state_ref="oval:org.ci-gate.tiny:ste:2"/>
    </unix:file_test>
  </tests>
  <objects>
    <unix:file_object id="oval:org.ci-gate.tiny:obj:1" version="1"><unix:filepath>/etc/shadow</unix:filepath>
    </unix:file_object>
    <unix:file_object id="oval:org.ci-gate.tiny:obj:2" version="1"><unix:filepath>/etc/passwd</unix:filepath>
    </unix:file_object>
  </objects>
  <states>
    <unix:file_state id="oval:org.ci-gate.tiny:ste:1" version="1"><unix:oread datatype="boolean">false</unix:oread>
    </unix:file_state>
    <unix:file_state id="oval:org.ci-gate.tiny:ste:2" version="1"><unix:user_id datatype="int">0</unix:user_id>
    </unix:file_state>
  </states>
</oval_definitions>
"""
DATASTREAM_NAME = "ssg-debian11-ds.xml"
"""What `--profile auto` looks for in the content folder for a Debian 11 image."""


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A content folder holding the composed datastream (the sources are removed: it is self-contained)."""
    folder = tmp_path_factory.mktemp("content")
    (folder / "tiny-xccdf.xml").write_text(XCCDF)
    (folder / "tiny-oval.xml").write_text(OVAL)
    subprocess.run(["oscap", "ds", "sds-compose", "tiny-xccdf.xml", DATASTREAM_NAME], cwd=folder, check=True,
                   capture_output=True)
    (folder / "tiny-xccdf.xml").unlink()
    (folder / "tiny-oval.xml").unlink()
    return folder


def _debian11(shadow_mode: int = 0o640) -> list[TarItem]:
    return [TarItem("etc/os-release", b'ID=debian\nVERSION_ID="11"\nPRETTY_NAME="Debian GNU/Linux 11"\n'),
            TarItem("etc/debian_version", b"11.9\n"),
            TarItem("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            TarItem("etc/shadow", b"root:*:19000:0:99999:7:::\n", mode=shadow_mode, gid=42)]


@pytest.fixture
def layout(tmp_path: Path) -> oci.OciImage:
    return oci.build_oci_layout(tmp_path / "image", [_debian11()], tag="tiny")


@pytest.fixture
def image(layout: oci.OciImage) -> str:
    return f"oci-dir:{layout.path}"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content_dir: Path) -> None:
    monkeypatch.setenv("CI_GATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(oscap, "SSG_CONTENT_DIR", content_dir)


def _evaluate(image: str, **options: object) -> tuple[StigEvaluation, bool]:
    """The evaluation and whether it came from the cache (then no tree was materialised)."""
    lines: list[str] = []
    evaluation = evaluate_image(image, SourceOptions(), log=lines.append, **options)  # type: ignore[arg-type]
    materialised = any(line.startswith("materialised ") for line in lines)
    cached = any("is cached" in line for line in lines)
    assert materialised != cached, lines
    return evaluation, cached


def _results(evaluation: StigEvaluation) -> dict[str, str]:
    return {rule.rule_id.removeprefix(RULE): rule.result for rule in evaluation.rules}


def test_a_cached_result_reads_no_layer(image: str, layout: oci.OciImage, tmp_path: Path) -> None:
    first, cached = _evaluate(image)
    assert not cached and _results(first) == {"file_permissions_etc_shadow": "pass", "file_owner_etc_passwd": "pass"}
    # Break every layer blob (same size, other bytes): reading one would fail its digest check.
    for digest in layout.layer_digests:
        blob = layout.blob_path(digest)
        blob.write_bytes(bytes(blob.stat().st_size))
    again, cached = _evaluate(image)
    assert cached and again.rules == first.rules and again.image_digest == first.image_digest
    with pytest.raises(SourceError):  # without the cache the broken layer is read: the hit above read none
        evaluate_image(image, SourceOptions(), use_cache=False)
    moved = tmp_path / "moved"
    shutil.copytree(layout.path, moved)
    renamed, cached = _evaluate(f"oci-dir:{moved}")
    assert cached and renamed.image == f"oci-dir:{moved}"  # the checklists name the image as it was asked for


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_changed_datastream_at_the_same_path_misses(image: str, tmp_path: Path, content_dir: Path) -> None:
    datastream = tmp_path / "content.xml"
    shutil.copy(content_dir / DATASTREAM_NAME, datastream)
    assert not _evaluate(image, datastream=datastream, profile="standard")[1]
    assert _evaluate(image, datastream=datastream, profile="standard")[1]
    _rewrite(datastream, SHADOW_TITLE, "/etc/shadow is not readable by others")
    changed, cached = _evaluate(image, datastream=datastream, profile="standard")
    assert not cached
    assert next(rule.title for rule in changed.rules if rule.rule_id.endswith("etc_shadow")) == \
        "/etc/shadow is not readable by others"


def test_the_same_datastream_at_another_path_misses(image: str, tmp_path: Path, content_dir: Path) -> None:
    """The datastream's file name goes into the checklists."""
    assert not _evaluate(image, datastream=content_dir / DATASTREAM_NAME, profile="standard")[1]
    other = tmp_path / "other-ds.xml"
    shutil.copy(content_dir / DATASTREAM_NAME, other)
    evaluation, cached = _evaluate(image, datastream=other, profile="standard")
    assert not cached and evaluation.datastream == str(other)


def test_another_profile_misses(image: str) -> None:
    assert not _evaluate(image)[1]  # auto: the content folder's Debian 11 datastream, profile standard
    assert _evaluate(image)[1]
    evaluation, cached = _evaluate(image, profile="shadow_only")
    assert not cached and set(_results(evaluation)) == {"file_permissions_etc_shadow"}
    assert _evaluate(image, profile="shadow_only")[1] and _evaluate(image)[1]  # each kept under its own key


def test_an_explicit_datastream_misses_what_auto_resolved(image: str, tmp_path: Path, content_dir: Path) -> None:
    """--profile auto resolved to the content folder's file; --datastream names another file: the cache
    must not answer with the auto content's result."""
    assert not _evaluate(image, profile="standard")[1]
    other = tmp_path / "other-ds.xml"
    shutil.copy(content_dir / DATASTREAM_NAME, other)
    _rewrite(other, SHADOW_TITLE, "shadow, other content")
    evaluation, cached = _evaluate(image, datastream=other, profile="standard")
    assert not cached and "shadow, other content" in [rule.title for rule in evaluation.rules]


def test_a_changed_content_folder_misses(image: str, tmp_path: Path, content_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """CI_GATE_SSG_CONTENT (a newer SSG) moves where --profile auto finds its datastream."""
    assert not _evaluate(image)[1]
    newer = tmp_path / "newer-ssg"
    newer.mkdir()
    shutil.copy(content_dir / DATASTREAM_NAME, newer / DATASTREAM_NAME)
    _rewrite(newer / DATASTREAM_NAME, SHADOW_TITLE, "shadow, newer SSG")
    monkeypatch.setattr(oscap, "SSG_CONTENT_DIR", newer)
    evaluation, cached = _evaluate(image)
    assert not cached and "shadow, newer SSG" in [rule.title for rule in evaluation.rules]


def test_another_image_digest_misses(image: str, tmp_path: Path) -> None:
    assert not _evaluate(image)[1]
    world_readable = oci.build_oci_layout(tmp_path / "other", [_debian11(shadow_mode=0o644)], tag="tiny")
    evaluation, cached = _evaluate(f"oci-dir:{world_readable.path}")
    assert not cached and _results(evaluation)["file_permissions_etc_shadow"] == "fail"


def test_another_oscap_version_misses(image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _evaluate(image)[1]
    real = shutil.which("oscap")
    wrapper = tmp_path / "bin" / "oscap"  # the same scanner, reporting a newer release
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "OpenSCAP command line tool (oscap) 1.3.99"; '
                       f'exit 0; fi\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    evaluation, cached = _evaluate(image)
    assert not cached and evaluation.scanner == "OpenSCAP 1.3.99"


def test_another_ci_gate_version_misses(image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ci-gate parses the results and re-decides dpkg rules: an upgrade evaluates again."""
    assert not _evaluate(image)[1]
    monkeypatch.setattr(ci_gate, "__version__", ci_gate.__version__ + ".post1")
    assert not _evaluate(image)[1]


def test_no_cache_evaluates_and_a_removed_datastream_is_not_answered_from_the_cache(image: str, tmp_path: Path,
                                                                                     content_dir: Path) -> None:
    datastream = tmp_path / "content.xml"
    shutil.copy(content_dir / DATASTREAM_NAME, datastream)
    assert not _evaluate(image, datastream=datastream, profile="standard")[1]
    assert not _evaluate(image, datastream=datastream, profile="standard", use_cache=False)[1]
    datastream.unlink()
    with pytest.raises(UsageError, match="does not exist"):
        evaluate_image(image, SourceOptions(), datastream=datastream, profile="standard")


def test_cached_and_fresh_runs_write_the_same_checklists(image: str, tmp_path: Path, content_dir: Path) -> None:
    """`ci-gate stig` twice: the second run is answered from the cache (one line says so) and writes
    byte-identical .ckl, .cklb and JSON."""
    env = {**os.environ, "CI_GATE_CACHE_DIR": str(tmp_path / "cli-cache"), "CI_GATE_SSG_CONTENT": str(content_dir)}
    runs = []
    for name in ("fresh", "cached"):
        done = subprocess.run([sys.executable, "-m", "ci_gate.cli", "stig", image, "--ckl", f"{name}.ckl", "--cklb",
                               f"{name}.cklb", "--json", f"{name}.json"], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr
        runs.append(done)
    assert "materialised" in runs[0].stderr and "is cached" not in runs[0].stderr
    assert "materialised" not in runs[1].stderr and "is cached; --no-cache evaluates again" in runs[1].stderr
    assert runs[0].stdout == runs[1].stdout
    for suffix in ("ckl", "cklb", "json"):
        assert (tmp_path / f"fresh.{suffix}").read_bytes() == (tmp_path / f"cached.{suffix}").read_bytes(), suffix
