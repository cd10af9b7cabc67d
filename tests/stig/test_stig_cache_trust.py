"""The STIG cache trusts only what this user wrote: its keys are predictable, so an entry someone else
could have written (another user's file, a file or folder others may write to) would let them plant a
passing result for an image that fails. Each test evaluates with the real oscap (the tiny content of
tests.stig.test_stig_cache)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from ci_gate.sources.interface import SourceOptions
from ci_gate.stig.evaluate import evaluate_image, evaluations_for_digest
from tests.stig.test_stig_cache import (  # noqa: F401 (fixtures)
    DATASTREAM_NAME,
    SHADOW_TITLE,
    _debian11,
    _evaluate,
    _results,
    content_dir,
    private_cache,
)
from tests.support import oci

SHADOW = "file_permissions_etc_shadow"


def _forge_pass(cache_root: Path) -> list[Path]:
    """Every cached result turned into a pass, as someone with write access to the folder could."""
    forged = []
    for path in cache_root.rglob("*.json"):
        text = path.read_text()
        if '"result": "fail"' in text:
            path.write_text(text.replace('"result": "fail"', '"result": "pass"'))
            forged.append(path)
    return forged


def test_a_result_others_could_write_is_not_answered(tmp_path: Path) -> None:
    readable = oci.build_oci_layout(tmp_path / "image", [_debian11(shadow_mode=0o644)], tag="tiny")
    image = f"oci-dir:{readable.path}"
    first, cached = _evaluate(image)
    assert not cached and _results(first)[SHADOW] == "fail"
    cache_root = tmp_path / "cache" / "stig"
    folders = [cache_root, *(p for p in cache_root.rglob("*") if p.is_dir())]
    assert len(folders) >= 3 and all(stat.S_IMODE(f.stat().st_mode) == 0o700 for f in folders)

    forged = _forge_pass(cache_root)
    assert len(forged) == 2  # the result and the gate's record of it
    for path in forged:
        path.chmod(0o666)  # as a file in a shared cache folder anyone may rewrite
    again, cached = _evaluate(image)
    assert not cached and _results(again)[SHADOW] == "fail"  # evaluated again, not the planted pass
    [recorded] = evaluations_for_digest(first.image_digest)  # the gate reads the real result
    assert {r.rule_id.rsplit("_rule_", 1)[1]: r.result for r in recorded.rules}[SHADOW] == "fail"
    assert _evaluate(image)[1]  # the entries were written again, privately: the next run is a hit


def test_a_result_in_a_folder_others_may_write_to_is_not_answered(tmp_path: Path) -> None:
    readable = oci.build_oci_layout(tmp_path / "image", [_debian11(shadow_mode=0o644)], tag="tiny")
    image = f"oci-dir:{readable.path}"
    assert not _evaluate(image)[1]
    cache_root = tmp_path / "cache" / "stig"
    _forge_pass(cache_root)
    for folder in [cache_root, *(p for p in cache_root.rglob("*") if p.is_dir())]:
        folder.chmod(0o777)
    evaluation = evaluate_image(image, SourceOptions())
    assert _results(evaluation)[SHADOW] == "fail"
    assert evaluations_for_digest(evaluation.image_digest) == []  # nothing trusted, nothing written there


def test_another_users_result_is_not_answered(tmp_path: Path) -> None:
    """Only root can give a file to another user: as root (CI's container), a planted file of uid 65534."""
    readable = oci.build_oci_layout(tmp_path / "image", [_debian11(shadow_mode=0o644)], tag="tiny")
    image = f"oci-dir:{readable.path}"
    assert not _evaluate(image)[1]
    forged = _forge_pass(tmp_path / "cache" / "stig")
    for path in forged:
        os.chown(path, 65534, 65534) if os.geteuid() == 0 else path.chmod(0o646)
    again, cached = _evaluate(image)
    assert not cached and _results(again)[SHADOW] == "fail"


def test_a_datastream_changed_during_the_evaluation_is_not_cached_as_the_new_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content_dir: Path) -> None:  # noqa: F811
    """The content is hashed before oscap reads it: a datastream replaced while oscap runs (a package
    upgrade in the middle of a run) keeps the result under the content oscap evaluated, so the next run,
    with the new content, evaluates again instead of being answered with the old content's result."""
    image = f"oci-dir:{oci.build_oci_layout(tmp_path / 'image', [_debian11()], tag='tiny').path}"
    datastream = tmp_path / "content.xml"
    shutil.copy(content_dir / DATASTREAM_NAME, datastream)
    real = shutil.which("oscap")
    wrapper = tmp_path / "bin" / "oscap"  # the real scanner; once it has run, the content is upgraded
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\n{real} "$@"\nstatus=$?\nif [ "$1" = xccdf ]; then '
                       f"sed -i 's|{SHADOW_TITLE}|shadow, upgraded content|' {datastream}; fi\nexit $status\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    first, cached = _evaluate(image, datastream=datastream, profile="standard")
    assert not cached and SHADOW_TITLE in [rule.title for rule in first.rules]
    assert "shadow, upgraded content" in datastream.read_text()
    upgraded, cached = _evaluate(image, datastream=datastream, profile="standard")
    assert not cached and "shadow, upgraded content" in [rule.title for rule in upgraded.rules]
