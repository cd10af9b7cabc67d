""".deps.json files against syft.

syft 1.18's dotnet-deps-cataloger runs on directories only: in an image scan syft reads .NET
assemblies' PE version resources instead (names like "Json.NET" from ProductName, file versions),
so an image's .NET inventory differs from syft's by design. The issue asks for `*.deps.json` (the
NuGet identities vulnerability data uses), so we compare with syft's deps.json cataloger itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.dotnet import (
    DotnetDepsCataloger,
    DotnetPortableExecutableCataloger,
    select_assembly_name,
    select_assembly_version,
)
from tests.support.catalogers import (
    DELETED,
    File,
    debian_package_tree,
    run,
    syft_artifacts,
    syft_triples,
    tree_layer,
)

FIXTURE = Path(__file__).parent / "fixtures" / "dotnet"


def test_deps_json_agrees_with_syft() -> None:
    theirs = syft_artifacts(FIXTURE, ["dotnet"], catalogers="dotnet-deps-cataloger")
    result = run(DotnetDepsCataloger, [tree_layer(FIXTURE)])
    assert result.warnings == []
    assert result.triples() == syft_triples(theirs)
    assert {item.purl for item in result.packages} == {item["purl"] for item in theirs}


def test_library_types_are_kept() -> None:
    result = run(DotnetDepsCataloger, [tree_layer(FIXTURE)])
    by_name = {item.name: item for item in result.packages}
    assert by_name["WebApi"].metadata["root"] is True
    assert by_name["WebApi"].metadata["library_type"] == "project"
    assert by_name["Shared.Core"].metadata["root"] is False
    assert by_name["Newtonsoft.Json"].metadata["library_type"] == "package"
    assert by_name["Newtonsoft.Json"].metadata["hash_path"] == "newtonsoft.json.13.0.3.nupkg.sha512"
    assert by_name["Newtonsoft.Json"].purl == "pkg:nuget/Newtonsoft.Json@13.0.3"


def test_corrupt_and_deleted_files() -> None:
    good = (FIXTURE / "app/WebApi.deps.json").read_bytes()
    layers = [
        {"/app/WebApi.deps.json": File(good), "/old/Old.deps.json": File(good)},
        {"/old/Old.deps.json": DELETED, "/broken/Broken.deps.json": File(good[:200]),
         "/other/Other.deps.json": File(b'{"runtimeTarget": {}}')},
    ]
    result = run(DotnetDepsCataloger, layers)
    assert {item.locations[0].path for item in result.packages} == {"/app/WebApi.deps.json"}
    assert any("Broken.deps.json" in warning and "JSON" in warning for warning in result.warnings)
    assert any("Other.deps.json" in warning and "libraries" in warning for warning in result.warnings)


# --- assemblies (what syft 1.18 reads for .NET in image scans) -------------------------------------------

CIL_PACKAGES = ("libmono-cecil-cil", "libdnlib2.1-cil")
"""Debian packages shipping real .NET assemblies (Mono.Cecil, dnlib) with version resources."""


@pytest.fixture(scope="session")
def assembly_tree() -> Path:
    return debian_package_tree(CIL_PACKAGES)


def test_assemblies_agree_with_syft(assembly_tree: Path) -> None:
    theirs = syft_artifacts(assembly_tree, ["dotnet"])
    result = run(DotnetPortableExecutableCataloger, [tree_layer(assembly_tree)])
    assert result.warnings == []
    assert len(theirs) >= 5
    assert result.triples() == syft_triples(theirs)
    assert {(item.locations[0].path, item.purl) for item in result.packages} == {
        (item["locations"][0]["path"], item["purl"]) for item in theirs}


@pytest.mark.parametrize(("strings", "name", "version"), [
    ({"ProductName": "Contoso Tool", "ProductVersion": "2.1.0", "FileVersion": "2.1.0.4512"}, "Contoso Tool",
     "2.1.0.4512"),
    ({"CompanyName": "Microsoft Corporation", "ProductName": "Microsoft\xa0.NET", "FileDescription": "System.Text.Json",
      "ProductVersion": "8.0.1+bf5e279d9239bfef5bb1b8d6212f1b971c434606", "FileVersion": "8.0.123.58001"},
     "System.Text.Json", "8.0.123.58001"),
    ({"ProductName": "Old", "ProductVersion": "1, 0, 0, 1", "FileVersion": "1, 0, 0, 1"}, "Old", "1, 0, 0, 1"),
    ({"ProductName": "Framework", "FileVersion": "4.7.4076.0 built by: NET472REL1LAST_B"}, "Framework",
     "4.7.4076.0"),
])
def test_name_and_version_choice(strings: dict[str, str], name: str, version: str) -> None:
    assert select_assembly_name(strings) == name
    assert select_assembly_version(strings) == version


def test_damaged_assemblies_warn_and_the_rest_stand(assembly_tree: Path) -> None:
    good = next(assembly_tree.rglob("dnlib.dll")).read_bytes()
    pe_offset = int.from_bytes(good[0x3C:0x40], "little")
    bad_signature = good[:pe_offset] + b"XX\0\0" + good[pe_offset + 4:]
    layer = {
        "/app/dnlib.dll": File(good),
        "/app/truncated.dll": File(good[: len(good) // 3]),
        "/app/bad-signature.dll": File(bad_signature),
        "/app/not-pe.dll": File(b"\x7fELF not a PE at all"),
    }
    result = run(DotnetPortableExecutableCataloger, [layer])
    assert [(item.name, item.version) for item in result.packages] == [("dnlib", "2.1.0.0")]
    assert {warning.split(": ")[1].split(" ")[0] for warning in result.warnings} == {
        "/app/truncated.dll", "/app/bad-signature.dll"}
