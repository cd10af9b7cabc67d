""".deps.json files against syft.

syft 1.18's dotnet-deps-cataloger runs on directories only: in an image scan syft reads .NET
assemblies' PE version resources instead (names like "Json.NET" from ProductName, file versions),
so an image's .NET inventory differs from syft's by design. The issue asks for `*.deps.json` (the
NuGet identities vulnerability data uses), so we compare with syft's deps.json cataloger itself."""

from __future__ import annotations

from pathlib import Path

from ci_gate.analyze.catalogers.dotnet import DotnetDepsCataloger
from tests.analyze.catalogers_b.layered import DELETED, File, run, syft_artifacts, syft_triples, tree_layer

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
