"""The analysis cache answers only for the same image AND the same inputs, and a hit is really served.

Guards two fail-open mutations: an input left out of the cache key (a later run would judge the old
Dockerfile and miss a new `EXPOSE 22`), and a cache that is written but never read.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.analyze.cache import CachedAnalysis
from ci_gate.analyze.output import render_analysis
from ci_gate.errors import UsageError
from ci_gate.model import Analysis, to_dict, write_json
from ci_gate.policy.gates.files import records_at
from ci_gate.policy.gates.interface import EvaluationContext
from tests.policy.helpers import NOW, messages
from tests.support.oci import OciImage, TarItem, build_oci_layout

MARK = "served from the analysis cache"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("CI_GATE_CACHE_DIR", str(directory))
    return directory / "analysis"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    folder = tmp_path_factory.mktemp("cached")
    return build_oci_layout(folder / "oci", [[
        TarItem("etc/", kind="dir", mode=0o755),
        TarItem("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
        TarItem("app/settings.ini", b"greeting = hello\nacme_token = acme_0123456789abcdef0123456789abcdef\n"),
    ]], tag="cached")


@pytest.fixture
def base_image(tmp_path: Path) -> OciImage:
    return build_oci_layout(tmp_path / "base", [[TarItem("etc/", kind="dir", mode=0o755),
                                                 TarItem("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n")]],
                            tag="base")


def _mark_every_entry(cache: Path) -> int:
    """Plant a warning into each stored analysis: a result that carries it came from the cache."""
    entries = sorted(cache.glob("*.json"))
    for entry in entries:
        header, where, analysis, *tables = entry.read_text().split("\n")  # see ci_gate.analyze.cache
        data = json.loads(analysis)
        data["warnings"] = [*data.get("warnings", []), MARK]
        entry.write_text("\n".join([header, where, json.dumps(data), *tables]))
    return len(entries)


def _analyze(image: OciImage, options: AnalyzeOptions) -> Analysis:
    return analyze_image(f"oci-dir:{image.path}", options)


def test_a_hit_is_really_served_from_the_cache(cache: Path, image: OciImage) -> None:
    first = _analyze(image, AnalyzeOptions())
    assert MARK not in first.warnings
    assert _mark_every_entry(cache) == 1
    second = _analyze(image, AnalyzeOptions())
    assert MARK in second.warnings  # read from the entry, not recomputed
    assert replace(second, warnings=first.warnings) == replace(first, identity=second.identity)
    assert MARK not in _analyze(image, AnalyzeOptions(use_cache=False)).warnings


def test_an_entry_this_user_did_not_write_is_a_miss(cache: Path, image: OciImage, tmp_path: Path) -> None:
    """Keys are predictable: an analysis planted in a cache folder others may write to, a file others may
    write, another user's file or a link must never be served (a planted analysis would pass a leaky image)."""
    _analyze(image, AnalyzeOptions())
    assert _mark_every_entry(cache) == 1
    entry = next(cache.glob("*.json"))
    cache.chmod(0o777)
    assert MARK not in _analyze(image, AnalyzeOptions()).warnings
    assert MARK in entry.read_text()  # and nothing was written into that folder
    cache.chmod(0o700)
    assert MARK in _analyze(image, AnalyzeOptions()).warnings  # the same entry, trusted again
    entry.chmod(0o664)
    assert MARK not in _analyze(image, AnalyzeOptions()).warnings
    assert MARK not in entry.read_text() and entry.stat().st_mode & 0o777 == 0o600  # replaced by our own
    assert _mark_every_entry(cache) == 1 and MARK in _analyze(image, AnalyzeOptions()).warnings
    if os.geteuid() == 0:  # CI runs as root: hand the entry to another user
        os.chown(entry, 65534, 65534)
        assert MARK not in _analyze(image, AnalyzeOptions()).warnings
        assert entry.stat().st_uid == os.geteuid()
    assert _mark_every_entry(cache) == 1
    planted = tmp_path / "planted.json"
    entry.rename(planted)
    entry.symlink_to(planted)
    assert MARK not in _analyze(image, AnalyzeOptions()).warnings


def _dockerfile(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


Options = Callable[[Path, OciImage], AnalyzeOptions]
"""Writes the input files it needs (under tmp_path), then returns the options naming them."""

CHANGES: dict[str, tuple[Options, Options]] = {
    "dockerfile content": (
        lambda tmp, base: AnalyzeOptions(dockerfile=_dockerfile(tmp, "Dockerfile", "FROM alpine:3.19\nUSER 1000\n")),
        lambda tmp, base: AnalyzeOptions(dockerfile=_dockerfile(tmp, "Dockerfile",
                                                                "FROM alpine:3.19\nUSER 1000\nEXPOSE 22\n"))),
    "dockerfile path": (
        lambda tmp, base: AnalyzeOptions(dockerfile=_dockerfile(tmp, "a/Dockerfile", "FROM alpine:3.19\n")),
        lambda tmp, base: AnalyzeOptions(dockerfile=_dockerfile(tmp, "b/Dockerfile", "FROM alpine:3.19\n"))),
    "dockerfile given": (
        lambda tmp, base: AnalyzeOptions(),
        lambda tmp, base: AnalyzeOptions(dockerfile=_dockerfile(tmp, "Dockerfile", "FROM alpine:3.19\nEXPOSE 22\n"))),
    "secret rules": (
        lambda tmp, base: AnalyzeOptions(secret_rules=_dockerfile(tmp, "rules.yaml", "disable: [GITHUB_TOKEN]\n")),
        lambda tmp, base: AnalyzeOptions(secret_rules=_dockerfile(
            tmp, "rules.yaml", "rules:\n  - name: ACME_TOKEN\n    regex: '.*acme_[a-z0-9]{32}'\n"
                               "    keywords: [acme_]\n"))),
    "base image": (
        lambda tmp, base: AnalyzeOptions(),
        lambda tmp, base: AnalyzeOptions(base_image=f"oci-dir:{base.path}")),
    "content searches": (
        lambda tmp, base: AnalyzeOptions(content_searches={"greeting": "greeting = hello"}),
        lambda tmp, base: AnalyzeOptions(content_searches={"greeting": "greeting = hello", "token": "acme_token"})),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_changing_an_input_misses_the_cache(cache: Path, image: OciImage, base_image: OciImage, tmp_path: Path,
                                            change: str) -> None:
    before, after = CHANGES[change]
    _analyze(image, before(tmp_path, base_image))
    assert _mark_every_entry(cache) == 1
    assert MARK in _analyze(image, before(tmp_path, base_image)).warnings  # the same inputs do hit
    result = _analyze(image, after(tmp_path, base_image))
    assert MARK not in result.warnings, f"{change}: the old analysis was served"
    assert len(list(cache.glob("*.json"))) == 2
    if change in ("dockerfile content", "dockerfile given"):
        assert ("EXPOSE", "22") in [(i.instruction, i.value) for i in result.dockerfile.instructions]
    if change == "dockerfile path":
        assert result.dockerfile.path.endswith("b/Dockerfile")
    if change == "secret rules":
        assert "ACME_TOKEN" in {s.rule for s in result.secrets}
    if change == "content searches":
        assert {m.name for m in result.content_matches} >= {"token"}


def _fresh_json(analysis: Analysis) -> bytes:
    out = io.StringIO()
    write_json(analysis, out)
    return (out.getvalue() + "\n").encode()


@pytest.fixture
def many_files(tmp_path: Path) -> OciImage:
    """Enough files that `write_json` writes them in several chunks, with names JSON must escape."""
    items = [TarItem("etc/", kind="dir", mode=0o755), TarItem("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
             TarItem('srv/q"uote\\d \u00e9t\u00e9', b"x"), TarItem("srv/link", kind="symlink", link_target="../etc")]
    items += [TarItem(f"srv/data/{number:04}.txt", b"%d\n" % number, mode=0o4755 if number == 7 else 0o644)
              for number in range(700)]
    return build_oci_layout(tmp_path / "many", [items], tag="many")


def test_a_hit_writes_json_byte_for_byte_without_loading_its_files(
        cache: Path, many_files: OciImage, tmp_path: Path) -> None:
    fresh = _analyze(many_files, AnalyzeOptions(use_cache=False))
    _analyze(many_files, AnalyzeOptions())  # fills the cache
    hit = _analyze(many_files, AnalyzeOptions())
    assert isinstance(hit, CachedAnalysis)
    render_analysis(hit, "json", tmp_path / "hit.json")
    assert hit._stored_files.loaded is None  # copied through: the file table was never parsed
    assert (tmp_path / "hit.json").read_bytes() == _fresh_json(fresh)
    # Read later, the lazy table is the analysed one, record for record.
    assert hit.files == fresh.files and len(hit.files) > 700
    assert [f.path for f in hit.setuid_files] == ["/srv/data/0007.txt"]
    assert hit == fresh
    assert to_dict(hit) == to_dict(fresh)  # the model's own writer sees the same fields


def test_a_hit_under_another_reference_writes_that_reference(
        cache: Path, many_files: OciImage, tmp_path: Path) -> None:
    _analyze(many_files, AnalyzeOptions())
    moved = tmp_path / "moved"
    shutil.copytree(many_files.path, moved)
    fresh = analyze_image(f"oci-dir:{moved}", AnalyzeOptions(use_cache=False))
    hit = analyze_image(f"oci-dir:{moved}", AnalyzeOptions())
    assert isinstance(hit, CachedAnalysis)  # the same digests: a hit, though the stored line names the old path
    render_analysis(hit, "json", tmp_path / "hit.json")
    written = (tmp_path / "hit.json").read_bytes()
    assert written == _fresh_json(fresh)
    assert json.loads(written)["identity"]["reference"] == f"oci-dir:{moved}"


def test_a_damaged_entry_is_a_miss_or_one_clear_error(cache: Path, many_files: OciImage) -> None:
    _analyze(many_files, AnalyzeOptions())
    (entry,) = cache.glob("*.json")
    whole = entry.read_bytes()
    entry.write_bytes(whole[:-100])  # cut short: a miss, analysed again
    assert not isinstance(_analyze(many_files, AnalyzeOptions()), CachedAnalysis)
    header, where, analysis, opening, first_row, *rest = entry.read_bytes().split(b"\n")
    assert opening == b"["  # the rows part: one file row per line
    broken = b"[{" + first_row[2:]  # same length, not JSON
    assert len(broken) == len(first_row) and broken != first_row
    entry.write_bytes(b"\n".join([header, where, analysis, opening, broken, *rest]))
    hit = _analyze(many_files, AnalyzeOptions())
    assert isinstance(hit, CachedAnalysis)
    with pytest.raises(UsageError, match=r"corrupt entry.*--no-cache"):
        _ = hit.files


@pytest.fixture
def ssh_image(tmp_path: Path) -> OciImage:
    """An SSH server binary among many files, in two layers, with look-alikes a path lookup must not take:
    a link whose target is the binary, and names that end like it."""
    base = [TarItem("etc/", kind="dir", mode=0o755), TarItem("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
            TarItem("usr/sbin/sshd", b"\x7fELF old", mode=0o755)]
    base += [TarItem(f"srv/data/{number:04}.txt", b"%d\n" % number) for number in range(700)]
    top = [TarItem("usr/sbin/sshd", b"\x7fELF new", mode=0o4755),  # the later layer's copy is the one in the image
           TarItem("usr/bin/dropbear-link", kind="symlink", link_target="/usr/sbin/dropbear"),
           TarItem("opt/usr/sbin/sshd", b"not at /usr/sbin"), TarItem("usr/sbin/sshd.bak", b"x")]
    return build_oci_layout(tmp_path / "ssh", [base, top], tag="ssh")


def test_a_lookup_by_path_reads_the_stored_rows_not_the_whole_table(cache: Path, ssh_image: OciImage) -> None:
    fresh = _analyze(ssh_image, AnalyzeOptions(use_cache=False))
    _analyze(ssh_image, AnalyzeOptions())  # fills the cache
    hit = _analyze(ssh_image, AnalyzeOptions())
    assert isinstance(hit, CachedAnalysis)
    wanted = ("/usr/sbin/sshd", "/usr/sbin/dropbear", "/srv/data/0042.txt")
    expected = tuple(f for f in fresh.files if f.path in wanted)
    assert [f.path for f in expected] == ["/srv/data/0042.txt", "/usr/sbin/sshd"]
    context = EvaluationContext(analysis=hit, now=NOW)
    assert records_at(context, wanted) == expected
    assert records_at(EvaluationContext(analysis=fresh, now=NOW), wanted) == expected  # the plain scan agrees
    # The same findings as on the fresh analysis, and the 700-file table was never parsed.
    ssh = messages("ssh_daemon", "present", None, hit)
    assert ssh == messages("ssh_daemon", "present", None, fresh) == ["SSH server binary /usr/sbin/sshd is present"]
    mode = {"filename": "/usr/sbin/sshd", "mode": "04755", "mode_op": "equals"}
    assert messages("files", "attribute_match", mode, hit) == messages("files", "attribute_match", mode, fresh)
    assert messages("files", "attribute_match", mode, hit) != []  # the top layer's mode, not the base's 0755
    assert hit._stored_files.loaded is None
    assert hit.files == fresh.files  # and the table, read afterwards, is still whole


def test_a_lookup_in_a_damaged_row_is_one_clear_error(cache: Path, ssh_image: OciImage) -> None:
    _analyze(ssh_image, AnalyzeOptions())
    (entry,) = cache.glob("*.json")
    whole = entry.read_bytes()
    row_start = whole.index(b'\n["/usr/sbin/sshd"') + 1
    entry.write_bytes(whole[:row_start] + b"{" + whole[row_start + 1:])  # same length, not JSON
    hit = _analyze(ssh_image, AnalyzeOptions())
    assert isinstance(hit, CachedAnalysis)
    with pytest.raises(UsageError, match=r"corrupt entry.*--no-cache"):
        messages("ssh_daemon", "present", None, hit)
