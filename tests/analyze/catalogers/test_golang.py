"""Go binaries: real ones (syft itself, skopeo, umoci, docker-registry) against syft, and built layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.golang import BUILD_INFO_MAGIC, GoModuleBinaryCataloger
from tests.support.catalogers import DELETED, File, run, syft_artifacts, syft_triples, tree_layer
from tests.support.elf_builder import (
    elf_with_data,
    go_inline_build_info,
    go_module_text,
    go_pointer_build_info,
)
from tests.support.syft import syft_binary

DEBIAN_GO_PROGRAMS = ("/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/docker-registry")
"""Go programs from Debian packages the suite installs anyway (GOPATH builds: no module lines)."""


@pytest.fixture(scope="session")
def go_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-like tree of real Go binaries: syft (module build, ~190 modules) and Debian's tools."""
    root = tmp_path_factory.mktemp("go-tree")
    (root / "usr/local/bin").mkdir(parents=True)
    shutil.copy2(syft_binary(), root / "usr/local/bin/syft")
    for program in DEBIAN_GO_PROGRAMS:
        assert Path(program).is_file(), f"{program} missing: install skopeo, umoci and docker-registry"
        shutil.copy2(program, root / "usr/local/bin" / Path(program).name)
    return root


@pytest.fixture(scope="session")
def go_syft(go_tree: Path) -> list[dict[str, object]]:
    return syft_artifacts(go_tree, ["go-module"])


def test_real_binaries_agree_with_syft(go_tree: Path, go_syft: list[dict[str, object]]) -> None:
    result = run(GoModuleBinaryCataloger, [tree_layer(go_tree)])
    assert result.warnings == []
    assert result.triples() == syft_triples(go_syft)
    ours = {(item.name, item.version, item.locations[0].path): item.purl for item in result.packages}
    theirs = {(str(item["name"]), str(item["version"]), str(item["locations"][0]["path"])): item["purl"]  # type: ignore[index]
              for item in go_syft}
    assert ours == theirs


def test_module_binary_details(go_tree: Path) -> None:
    result = run(GoModuleBinaryCataloger, [tree_layer(go_tree)])
    syft_packages = [item for item in result.packages if item.locations[0].path == "/usr/local/bin/syft"]
    main = next(item for item in syft_packages if item.name == "github.com/anchore/syft")
    assert main.version.startswith("v1.")
    settings = {entry["key"]: entry["value"] for entry in main.metadata["go_build_settings"]}
    assert settings["GOOS"] == "linux" and settings["GOARCH"] == "amd64"
    assert main.metadata["architecture"] == "amd64"
    dependencies = [item for item in syft_packages if item.name not in ("github.com/anchore/syft", "stdlib")]
    assert len(dependencies) > 100
    assert all(str(item.metadata["h1_digest"]).startswith("h1:") for item in dependencies)
    assert all(item.metadata["main_module"] == "github.com/anchore/syft" for item in dependencies)
    stdlib = next(item for item in syft_packages if item.name == "stdlib")
    assert stdlib.version == main.metadata["go_compiled_version"]
    assert stdlib.purl == f"pkg:golang/stdlib@{stdlib.version.removeprefix('go')}"


def test_gopath_build_main_module_is_devel_with_subpath() -> None:
    content = Path("/usr/bin/umoci").read_bytes()
    result = run(GoModuleBinaryCataloger, [{"/usr/bin/umoci": File(content, 0o755)}])
    main = next(item for item in result.packages if item.name != "stdlib")
    assert (main.name, main.version) == ("github.com/opencontainers/umoci/cmd/umoci", "(devel)")
    assert main.purl == "pkg:golang/github.com/opencontainers/umoci@(devel)#cmd/umoci"


def _modules(main_version: str = "v1.4.0", settings: tuple[str, ...] = ()) -> bytes:
    return go_module_text([
        "path\texample.com/tool/cmd/tool",
        f"mod\texample.com/tool\t{main_version}\t",
        "dep\tgithub.com/pkg/errors\tv0.9.1\th1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=",
        "dep\tgolang.org/x/text\tv0.3.7",
        "=>\tgolang.org/x/text\tv0.3.8\th1:abc=",
        *settings,
    ])


def test_pre_go_1_18_pointer_layout() -> None:
    binary = elf_with_data(go_pointer_build_info("go1.16.15", _modules()))
    result = run(GoModuleBinaryCataloger, [{"/app/tool": File(binary, 0o755)}])
    assert result.warnings == []
    assert {(item.name, item.version) for item in result.packages} == {
        ("example.com/tool", "v1.4.0"), ("github.com/pkg/errors", "v0.9.1"),
        ("golang.org/x/text", "v0.3.8"), ("stdlib", "go1.16.15")}
    replaced = next(item for item in result.packages if item.name == "golang.org/x/text")
    assert replaced.metadata["replaces"] == "golang.org/x/text@v0.3.7"
    assert replaced.metadata["h1_digest"] == "h1:abc="
    assert replaced.metadata["architecture"] == "x86_64"  # no GOARCH setting: the ELF machine, as syft names it


def test_inline_layout_in_the_go_buildinfo_section() -> None:
    payload = go_inline_build_info("go1.21.5 X:boringcrypto", _modules())
    binary = elf_with_data(b"\0" * 64, sections={".go.buildinfo": payload})
    result = run(GoModuleBinaryCataloger, [{"/app/tool": File(binary, 0o755)}])
    main = next(item for item in result.packages if item.name == "example.com/tool")
    assert main.metadata["go_compiled_version"] == "go1.21.5"
    assert main.metadata["go_experiments"] == ["boringcrypto"]
    assert main.purl == "pkg:golang/example.com/tool@v1.4.0"
    assert next(item for item in result.packages if item.name == "stdlib").version == "go1.21.5"


@pytest.mark.parametrize(("settings", "expected"), [
    (('build\t-ldflags="-s -w -X main.version=2.3.4"',), "v2.3.4"),
    (("build\tvcs.revision=0123456789abcdef0123", "build\tvcs.time=2024-03-05T10:11:12Z"),
     "v0.0.0-20240305101112-0123456789ab"),
    ((), "(devel)"),
])
def test_devel_main_module_version_guesses(settings: tuple[str, ...], expected: str) -> None:
    binary = elf_with_data(go_inline_build_info("go1.22.0", _modules("(devel)", settings)))
    result = run(GoModuleBinaryCataloger, [{"/app/tool": File(binary, 0o755)}])
    main = next(item for item in result.packages if item.name == "example.com/tool")
    assert main.version == expected


def test_truncated_binary_still_read_and_warned() -> None:
    content = Path("/usr/bin/skopeo").read_bytes()
    cut = content.find(BUILD_INFO_MAGIC) + 4096  # keeps the build info, loses the section headers
    result = run(GoModuleBinaryCataloger, [{"/usr/bin/skopeo": File(content[:cut], 0o755)}])
    assert {item.name for item in result.packages} == {"github.com/containers/skopeo/cmd/skopeo", "stdlib"}
    assert any("truncated" in warning for warning in result.warnings)


@pytest.mark.parametrize("cut", [20, 100, 5000])
def test_binary_cut_short_never_raises(cut: int) -> None:
    content = Path("/usr/bin/umoci").read_bytes()[:cut]
    result = run(GoModuleBinaryCataloger, [{"/usr/bin/umoci": File(content, 0o755)}])
    assert result.packages == []


def test_hostile_string_length_is_a_warning() -> None:
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    binary = elf_with_data(header + b"\xff\xff\xff\xff\x0f" + b"go1.21")
    good = elf_with_data(go_inline_build_info("go1.21.0", _modules()))
    result = run(GoModuleBinaryCataloger, [{"/app/evil": File(binary, 0o755), "/app/good": File(good, 0o755)}])
    assert any("/app/evil" in warning and "1 MiB" in warning for warning in result.warnings)
    assert {item.name for item in result.packages} >= {"example.com/tool"}


def test_only_executables_are_read() -> None:
    content = Path("/usr/bin/umoci").read_bytes()
    cataloger = GoModuleBinaryCataloger()
    assert cataloger.wants("/usr/bin/umoci", 0o755, len(content)) > 0
    assert cataloger.wants("/usr/share/doc/umoci.bin", 0o644, len(content)) == 0
    result = run(GoModuleBinaryCataloger, [{"/srv/umoci.copy": File(content, 0o644)}])
    assert result.packages == []


def test_layers_decide_what_is_reported() -> None:
    binary = File(elf_with_data(go_inline_build_info("go1.21.0", _modules())), 0o755)
    script = File(b"#!/bin/sh\necho replaced\n", 0o755)
    layers = [
        {"/bin/kept": binary, "/bin/replaced": binary, "/bin/deleted": binary},
        {"/bin/replaced": script, "/bin/deleted": DELETED, "/bin/added": binary},
    ]
    result = run(GoModuleBinaryCataloger, layers, base_layers=1)
    by_path = {item.locations[0].path for item in result.packages}
    assert by_path == {"/bin/kept", "/bin/added"}
    added = [item for item in result.packages if item.locations[0].path == "/bin/added"]
    assert {item.origin for item in added} == {"app"}
    assert {item.locations[0].layer_index for item in added} == {1}
    kept = [item for item in result.packages if item.locations[0].path == "/bin/kept"]
    assert {item.origin for item in kept} == {"base"}


def test_command_line_arguments_build_takes_its_devel_dependency_as_main() -> None:
    modules = go_module_text([
        "path\tcommand-line-arguments",
        "mod\tcommand-line-arguments\t(devel)\t",
        "dep\texample.com/service\t(devel)\t",
        "dep\tgithub.com/pkg/errors\tv0.9.1\th1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=",
    ])
    binary = elf_with_data(go_inline_build_info("go1.22.1", modules))
    result = run(GoModuleBinaryCataloger, [{"/app/service": File(binary, 0o755)}])
    assert sorted((item.name, item.version) for item in result.packages) == [
        ("example.com/service", "(devel)"), ("github.com/pkg/errors", "v0.9.1"), ("stdlib", "go1.22.1")]
    errors = next(item for item in result.packages if item.name == "github.com/pkg/errors")
    assert errors.metadata["main_module"] == "example.com/service"


def test_pointers_outside_the_binary_are_a_warning() -> None:
    import struct

    header = b"\xff Go buildinf:" + bytes([8, 0]) + struct.pack("<QQ", 0xDEAD0000, 0xBEEF0000)
    result = run(GoModuleBinaryCataloger, [{"/app/evil": File(elf_with_data(header + bytes(64)), 0o755)}])
    assert result.packages == []
    assert len(result.warnings) == 1 and "outside every loadable segment" in result.warnings[0]


def test_go_binary_larger_than_the_read_limit_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    content = Path("/usr/bin/umoci").read_bytes()
    monkeypatch.setattr(GoModuleBinaryCataloger, "max_bytes", len(content) // 2)  # the build info is near the end
    result = run(GoModuleBinaryCataloger, [{"/usr/bin/umoci": File(content, 0o755)}])
    assert result.packages == []
    assert len(result.warnings) == 1 and "beyond" in result.warnings[0] and "MAX_FILE_READ_BYTES" in result.warnings[0]
    other = Path("/bin/true").read_bytes()  # not Go: a prefix of it is no reason to warn
    monkeypatch.setattr(GoModuleBinaryCataloger, "max_bytes", len(other) // 2)
    assert run(GoModuleBinaryCataloger, [{"/bin/true": File(other, 0o755)}]).warnings == []
