"""The whole analyzer on a real two-layer OCI image holding every ecosystem of this family, against syft.

Layer 0 (the base): a Go program, a jar, a jar later deleted, an installed gem. Layer 1 (the app):
a war with nested jars, Composer's installed.json, a cargo-auditable program, a .deps.json and an
assembly, a whiteout of the old jar and another Go program written over the first one's path.
"""

from __future__ import annotations

import collections
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.model import Analysis
from tests.analyze.catalogers.test_java import make_zip, manifest, pom_properties, real_jar
from tests.analyze.catalogers.test_rust import DEPENDENCIES, auditable_binary
from tests.support.catalogers import debian_package_tree
from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.syft import run_syft_json

FIXTURES = Path(__file__).parent / "fixtures"
OUR_TYPES = ("go-module", "java-archive", "jenkins-plugin", "gem", "php-composer", "rust-crate", "dotnet")
KNOWN_DIFFERENCES = {
    ("dotnet", "WebApi", "1.0.0"): "syft 1.18 reads .deps.json only in directory scans (PE resources in images)",
    ("dotnet", "Newtonsoft.Json", "13.0.3"): "as above",
    ("dotnet", "Serilog", "3.1.1"): "as above",
    ("dotnet", "Serilog.AspNetCore", "8.0.0"): "as above",
    ("dotnet", "Shared.Core", "1.0.0"): "as above",
}
"""(type, name, version) we report and syft does not, with the reason."""


@pytest.fixture(scope="session")
def mixed_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    gems = debian_package_tree(("ruby-rack",))
    rack = next(gems.rglob("rack-*.gemspec"))
    dnlib = next(debian_package_tree(("libmono-cecil-cil", "libdnlib2.1-cil")).rglob("dnlib.dll"))
    war = make_zip({
        "META-INF/MANIFEST.MF": manifest(Implementation_Version="3.1.0"),
        "META-INF/maven/com.example/shop/pom.properties": pom_properties("com.example", "shop", "3.1.0"),
        "WEB-INF/lib/guava-31.1-jre.jar": real_jar("guava.jar"),
        "WEB-INF/lib/slf4j-api-1.7.32.jar": real_jar("slf4j-api.jar"),
    })
    old_jar = make_zip({"META-INF/MANIFEST.MF": manifest(),
                        "META-INF/maven/com.example/old/pom.properties": pom_properties("com.example", "old", "1.0")})
    rust = auditable_binary(tmp_path_factory.mktemp("objcopy"), zlib.compress(json.dumps(DEPENDENCIES).encode()))
    base = [
        TarItem("usr/local/bin/tool", Path("/usr/bin/umoci").read_bytes(), mode=0o755),
        TarItem("opt/lib/commons-lang3-3.12.0.jar", real_jar("commons-lang3.jar")),
        TarItem("opt/lib/old-1.0.jar", old_jar),
        TarItem(f"usr/share/rubygems-integration/all/specifications/{rack.name}", rack.read_bytes()),
    ]
    app = [
        TarItem("opt/lib/.wh.old-1.0.jar"),
        TarItem("usr/local/bin/tool", Path("/usr/bin/skopeo").read_bytes(), mode=0o755),
        TarItem("usr/local/bin/rg", rust, mode=0o755),
        TarItem("srv/shop.war", war),
        TarItem("var/www/app/vendor/composer/installed.json",
                (FIXTURES / "php-composer2/var/www/app/vendor/composer/installed.json").read_bytes()),
        TarItem("app/WebApi.deps.json", (FIXTURES / "dotnet/app/WebApi.deps.json").read_bytes()),
        TarItem("app/dnlib.dll", dnlib.read_bytes()),
    ]
    return build_oci_layout(tmp_path_factory.mktemp("mixed-oci"), [base, app], tag="mixed")


@pytest.fixture(scope="session")
def mixed_analysis(mixed_image: OciImage) -> Analysis:
    return analyze_image(f"oci-dir:{mixed_image.path}", AnalyzeOptions(use_cache=False))


@pytest.fixture(scope="session")
def mixed_syft(mixed_image: OciImage) -> list[dict[str, Any]]:
    document = run_syft_json(f"oci-dir:{mixed_image.path}")
    return [artifact for artifact in document["artifacts"] if artifact["type"] in OUR_TYPES]


def test_image_inventory_agrees_with_syft(mixed_analysis: Analysis, mixed_syft: list[dict[str, Any]]) -> None:
    ours = collections.Counter((item.type, item.name, item.version) for item in mixed_analysis.packages
                               if item.type in OUR_TYPES)
    theirs = collections.Counter((item["type"], item["name"], item["version"]) for item in mixed_syft)
    assert not theirs - ours, f"syft found, we did not: {sorted(theirs - ours)}"
    assert set(ours - theirs) == set(KNOWN_DIFFERENCES)
    assert not [warning for warning in mixed_analysis.warnings if "cataloger" in warning]


def test_packages_point_at_the_layer_that_wrote_their_evidence(mixed_analysis: Analysis, mixed_image: OciImage,
                                                               mixed_syft: list[dict[str, Any]]) -> None:
    packages = [item for item in mixed_analysis.packages if item.type in OUR_TYPES]
    names = {item.name for item in packages}
    assert "old" not in names  # deleted by the app layer's whiteout
    assert "github.com/opencontainers/umoci/cmd/umoci" not in names  # overwritten by skopeo
    layer_of = {item.name: item.locations[0].layer_index for item in packages}
    assert layer_of["commons-lang3"] == 0 and layer_of["rack"] == 0
    assert layer_of["github.com/containers/skopeo/cmd/skopeo"] == 1
    assert layer_of["guava"] == 1 and layer_of["regex"] == 1 and layer_of["monolog/monolog"] == 1
    assert layer_of["dnlib"] == 1
    syft_layer = {(item["name"], item["version"]): item["locations"][0]["layerID"] for item in mixed_syft}
    for item in packages:
        if (item.name, item.version) in syft_layer:
            assert item.locations[0].layer_diff_id == syft_layer[(item.name, item.version)], item.name
    assert {item.locations[0].layer_diff_id for item in packages} <= set(mixed_image.diff_ids)
