"""Composer's installed.json (Composer 1 array and Composer 2 object) against syft."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.php import ComposerInstalledCataloger, composer_package_url
from tests.support.catalogers import File, run, syft_artifacts, syft_triples, tree_layer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("fixture", ["php-composer2", "php-composer1"])
def test_installed_json_agrees_with_syft(fixture: str) -> None:
    root = FIXTURES / fixture
    theirs = syft_artifacts(root, ["php-composer"])
    result = run(ComposerInstalledCataloger, [tree_layer(root)])
    assert result.warnings == []
    assert len(theirs) >= 3
    assert result.triples() == syft_triples(theirs)
    assert {(item.name, item.purl, item.licenses) for item in result.packages} == {
        (item["name"], item["purl"], tuple(license["value"] for license in item["licenses"])) for item in theirs}


def test_composer2_metadata() -> None:
    result = run(ComposerInstalledCataloger, [tree_layer(FIXTURES / "php-composer2")])
    by_name = {item.name: item for item in result.packages}
    assert by_name["phpunit/php-timer"].metadata["dev"] is True
    assert by_name["monolog/monolog"].metadata["dev"] is False
    assert by_name["monolog/monolog"].metadata["source"]["reference"].startswith("c915e26")
    assert by_name["monolog/monolog"].locations[0].path == "/var/www/app/vendor/composer/installed.json"


def test_package_url_of_deep_names() -> None:
    assert composer_package_url("vendor/project", "1.0") == "pkg:composer/vendor/project@1.0"
    assert composer_package_url("vendor/group/project", "1.0") == "pkg:composer/vendor/group-project@1.0"
    assert composer_package_url("solo", "2.0") == "pkg:composer/solo@2.0"


def test_corrupt_installed_json_warns_and_the_rest_stands() -> None:
    good = (FIXTURES / "php-composer1/srv/legacy/vendor/composer/installed.json").read_bytes()
    layer = {
        "/srv/a/vendor/composer/installed.json": File(good[: len(good) // 2]),
        "/srv/b/vendor/composer/installed.json": File(good),
        "/srv/c/vendor/composer/installed.json": File(b'{"packages": "not a list"}'),
        "/opt/tool/installed.json": File(b"not json and not composer's"),
    }
    result = run(ComposerInstalledCataloger, [layer])
    assert {item.locations[0].path for item in result.packages} == {"/srv/b/vendor/composer/installed.json"}
    assert len(result.packages) == 3
    assert [warning.split(":")[1].strip().split(" ")[0] for warning in result.warnings] == [
        "/srv/a/vendor/composer/installed.json", "/srv/c/vendor/composer/installed.json"]
