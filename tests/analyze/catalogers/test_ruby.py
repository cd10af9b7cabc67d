"""Installed gems: real Debian ruby packages' gemspecs against syft, and the gemspec lines syft reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.ruby import GemSpecCataloger, parse_gemspec
from tests.support.catalogers import (
    File,
    debian_package_tree,
    run,
    syft_artifacts,
    syft_triples,
    tree_layer,
)

RUBY_PACKAGES = ("ruby-rack", "ruby-sinatra", "ruby-rack-protection", "ruby-tilt", "ruby-mustermann", "ruby-json")


@pytest.fixture(scope="session")
def ruby_tree() -> Path:
    return debian_package_tree(RUBY_PACKAGES)


def test_debian_gems_agree_with_syft(ruby_tree: Path) -> None:
    theirs = syft_artifacts(ruby_tree, ["gem"])
    result = run(GemSpecCataloger, [tree_layer(ruby_tree)])
    assert result.warnings == []
    assert len(theirs) == len(RUBY_PACKAGES)
    assert result.triples() == syft_triples(theirs)
    assert {(item.name, item.purl, item.licenses) for item in result.packages} == {
        (item["name"], item["purl"], tuple(license["value"] for license in item["licenses"])) for item in theirs}


def test_gemspec_lines() -> None:
    text = "\n".join([
        "# -*- encoding: utf-8 -*-",
        "Gem::Specification.new do |s|",
        '  s.name = "caf\\u00E9".freeze',
        "  s.version = '1.2.3'",
        '  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze)',
        '  s.authors = ["Andr\\u00E9 Arko".freeze, "Samuel Giddins".freeze]',
        '  s.licenses = ["MIT".freeze, "Ruby".freeze]',
        '  s.rubygems_version = "3.3.15".freeze',
        "end",
    ])
    fields = parse_gemspec(text)
    assert fields["name"] == "café"
    assert fields["version"] == "1.2.3"
    assert fields["authors"] == ["André Arko", "Samuel Giddins"]
    assert fields["licenses"] == ["MIT", "Ruby"]


def test_only_installed_specifications_and_bad_files() -> None:
    spec = b's.name = "thing".freeze\ns.version = "0.4.0"\ns.licenses = ["Apache-2.0".freeze]\n'
    layer = {
        "/usr/local/bundle/specifications/thing-0.4.0.gemspec": File(spec),
        "/src/app/thing.gemspec": File(spec),  # a source checkout's gemspec is not an installed gem
        "/usr/local/bundle/specifications/binary.gemspec": File(b"\x00\xff\xfe garbage"),
    }
    result = run(GemSpecCataloger, [layer])
    assert [(item.name, item.version, item.licenses, item.purl) for item in result.packages] == [
        ("thing", "0.4.0", ("Apache-2.0",), "pkg:gem/thing@0.4.0")]
