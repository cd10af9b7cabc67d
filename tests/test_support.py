"""Tests of the test infrastructure itself: the OCI writer, registries, cache and syft."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import multiprocessing
import os
import sys
import tarfile
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.support import cache
from tests.support.debian import APP_CONFIG, DebianImages, debian_mirror
from tests.support.oci import (
    FORMAT_VERSION,
    OciImage,
    SkopeoError,
    TarItem,
    build_image_index,
    build_oci_layout,
    push,
    run_skopeo,
    to_docker_archive,
    to_oci_archive,
)
from tests.support.registry import RegistryServer
from tests.support.tiny import TINY_PACKAGES

HOSTILE_ITEMS = [
    TarItem("etc", kind="dir", mode=0o755),
    TarItem("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    TarItem("../etc/x", b"escape"),
    TarItem("/abs/path", b"absolute"),
    TarItem("etc/.wh.name"),
    TarItem("dir/.wh..wh..opq"),
    TarItem("etc/link", kind="symlink", link_target="/etc/passwd", mode=0o777),
    TarItem("etc/hard", kind="hardlink", link_target="etc/passwd"),
    TarItem("dev/null", kind="char", mode=0o666, device_major=1, device_minor=3),
    TarItem("run/pipe", kind="fifo"),
    TarItem("usr/bin/su", b"\x7fELF", mode=0o4755, uid=0, gid=0),
    TarItem("home/user/file", b"owned", uid=1000, gid=1000),
]


def _make_tree(root: Path) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    os.link(root / "usr" / "bin" / "tool", root / "usr" / "bin" / "tool-alias")
    (root / "usr" / "bin" / "link").symlink_to("tool")
    os.mkfifo(root / "usr" / "fifo")
    return root


def _layer_members(image: OciImage, index: int) -> list[tarfile.TarInfo]:
    blob = image.blob_path(image.layer_digests[index]).read_bytes()
    raw = _decompress(blob, image.layer_media_types[index])
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return tar.getmembers()


def _decompress(blob: bytes, media_type: str) -> bytes:
    if media_type.endswith("+gzip"):
        return gzip.decompress(blob)
    if media_type.endswith("+zstd"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_writer_is_byte_for_byte_deterministic(tmp_path: Path, compression: str) -> None:
    tree = _make_tree(tmp_path / "tree")
    layers: list[Any] = [HOSTILE_ITEMS, tree]
    first = build_oci_layout(tmp_path / "one", layers, tag="t", compression=compression)
    second = build_oci_layout(tmp_path / "two", layers, tag="t", compression=compression)
    assert first.manifest_digest == second.manifest_digest
    assert first.layer_digests == second.layer_digests
    files_one = {p.relative_to(first.path): p.read_bytes() for p in first.path.rglob("*") if p.is_file()}
    files_two = {p.relative_to(second.path): p.read_bytes() for p in second.path.rglob("*") if p.is_file()}
    assert files_one == files_two


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_blobs_match_their_digests_and_diff_ids(tmp_path: Path, compression: str) -> None:
    image = build_oci_layout(tmp_path / "oci", [HOSTILE_ITEMS, _make_tree(tmp_path / "tree")],
                             compression=compression, config={"User": "1000"})
    manifest = image.manifest()
    config = image.config()
    assert config["rootfs"] == {"type": "layers", "diff_ids": list(image.diff_ids)}
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert len(config["history"]) == 2
    assert config["config"] == {"User": "1000"}
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    for descriptor, diff_id in zip(manifest["layers"], image.diff_ids, strict=True):
        blob = image.blob_path(descriptor["digest"]).read_bytes()
        assert _sha256(blob) == descriptor["digest"]
        assert len(blob) == descriptor["size"]
        assert _sha256(_decompress(blob, descriptor["mediaType"])) == diff_id
        suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[compression]
        assert descriptor["mediaType"].endswith(suffix)


def test_writer_output_is_pinned_to_its_format_version(tiny_oci: OciImage) -> None:
    # Cached images are keyed on FORMAT_VERSION: if this fails, the writer's bytes changed, so bump
    # FORMAT_VERSION in tests/support/oci.py and update the digest here. The config digest covers
    # the uncompressed layer tars (diff_ids) but not gzip, whose bytes depend on the zlib build.
    assert (FORMAT_VERSION, tiny_oci.config_digest) == (
        "1", "sha256:4132b25897fb9024ad8cc49b59a40d53b947783568040b95cc80d6a2e2859bfb")


def test_tar_items_are_written_verbatim(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [HOSTILE_ITEMS])
    members = {member.name: member for member in _layer_members(image, 0)}
    assert {"../etc/x", "/abs/path", "etc/.wh.name", "dir/.wh..wh..opq"} <= set(members)
    assert members["etc/link"].issym() and members["etc/link"].linkname == "/etc/passwd"
    assert members["etc/hard"].islnk() and members["etc/hard"].linkname == "etc/passwd"
    device = members["dev/null"]
    assert device.ischr() and (device.devmajor, device.devminor) == (1, 3)
    assert members["run/pipe"].isfifo()
    assert members["usr/bin/su"].mode == 0o4755
    assert (members["home/user/file"].uid, members["home/user/file"].gid) == (1000, 1000)


def test_directory_layer_normalises_owner_and_time_and_keeps_links(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [_make_tree(tmp_path / "tree")])
    members = _layer_members(image, 0)
    names = [member.name for member in members]
    assert names == ["usr", "usr/bin", "usr/fifo", "usr/bin/link", "usr/bin/tool", "usr/bin/tool-alias"]
    by_name = {member.name: member for member in members}
    assert by_name["usr/bin/tool-alias"].islnk() and by_name["usr/bin/tool-alias"].linkname == "usr/bin/tool"
    assert by_name["usr/bin/link"].issym()
    assert by_name["usr/fifo"].isfifo()
    assert all(member.uid == 0 and member.gid == 0 and member.mtime == 0 for member in members)


def test_tar_file_layer_is_used_verbatim(tmp_path: Path) -> None:
    source = tmp_path / "layer.tar"
    with tarfile.open(source, "w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("./etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"host\n"))
    image = build_oci_layout(tmp_path / "oci", [source])
    again = build_oci_layout(tmp_path / "oci2", [source])  # reuses the compressed blob
    assert image.diff_ids == (_sha256(source.read_bytes()),)
    assert again.layer_digests == image.layer_digests
    assert again.blob_path(again.layer_digests[0]).exists()


def test_skopeo_inspects_the_layout(tiny_oci: OciImage) -> None:
    inspected = json.loads(run_skopeo(["inspect", tiny_oci.skopeo_ref]))
    assert inspected["Digest"] == tiny_oci.manifest_digest
    assert inspected["Layers"] == list(tiny_oci.layer_digests)
    assert inspected["Labels"] == {"org.opencontainers.image.title": "ci-gate-tiny"}


def test_several_tags_share_one_layout(tmp_path: Path) -> None:
    out = tmp_path / "oci"
    first = build_oci_layout(out, [HOSTILE_ITEMS[:2]], tag="one")
    second = build_oci_layout(out, [HOSTILE_ITEMS[:3]], tag="two")
    retagged = build_oci_layout(out, [HOSTILE_ITEMS[:4]], tag="one")
    index = json.loads((out / "index.json").read_text())
    names = [entry["annotations"]["org.opencontainers.image.ref.name"] for entry in index["manifests"]]
    assert sorted(names) == ["one", "two"]
    assert json.loads(run_skopeo(["inspect", second.skopeo_ref]))["Digest"] == second.manifest_digest
    assert json.loads(run_skopeo(["inspect", retagged.skopeo_ref]))["Digest"] == retagged.manifest_digest
    assert retagged.manifest_digest != first.manifest_digest


def test_image_index_holds_two_platforms(tmp_path: Path) -> None:
    index = build_image_index(tmp_path / "oci", {"linux/amd64": [HOSTILE_ITEMS[:2]],
                                                  "linux/arm64/v8": [HOSTILE_ITEMS[:3]]}, tag="multi")
    raw = json.loads(run_skopeo(["inspect", "--raw", index.skopeo_ref]))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {(m["platform"]["architecture"], m["platform"].get("variant")) for m in raw["manifests"]}
    assert platforms == {("amd64", None), ("arm64", "v8")}
    arm = json.loads(run_skopeo(["inspect", "--override-arch", "arm64", "--override-variant", "v8",
                                 index.skopeo_ref]))
    # skopeo reports the digest of what the tag names (the index), and the chosen platform's layers.
    assert arm["Digest"] == index.index_digest
    assert arm["Layers"] == list(index.images["linux/arm64/v8"].layer_digests)
    assert arm["Architecture"] == "arm64"


def test_archives_via_skopeo(tiny_oci: OciImage, tmp_path: Path) -> None:
    docker_archive = to_docker_archive(tiny_oci, tmp_path / "tiny.docker.tar", "test/tiny:1")
    with tarfile.open(docker_archive) as tar:
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.loads(manifest_file.read())
    assert manifest[0]["RepoTags"] == ["docker.io/test/tiny:1"]
    config_name = manifest[0]["Config"].removesuffix(".json")
    assert config_name.endswith(tiny_oci.config_digest.removeprefix("sha256:"))
    oci_archive = to_oci_archive(tiny_oci, tmp_path / "tiny.oci.tar")
    inspected = json.loads(run_skopeo(["inspect", f"oci-archive:{oci_archive}:tiny"]))
    assert inspected["Digest"] == tiny_oci.manifest_digest


def test_syft_finds_the_tiny_packages(tiny_oci: OciImage, syft_json: Callable[..., dict[str, Any]]) -> None:
    document = syft_json(f"oci-dir:{tiny_oci.path}")
    found = {(artifact["type"], artifact["name"], artifact["version"]) for artifact in document["artifacts"]}
    assert found == set(TINY_PACKAGES)
    assert document["distro"]["prettyName"] == "Debian GNU/Linux 12 (bookworm)"
    assert document["source"]["metadata"]["manifestDigest"] == tiny_oci.manifest_digest
    layer_of = {artifact["name"]: artifact["locations"][0]["layerID"] for artifact in document["artifacts"]}
    assert layer_of == {"openssl": tiny_oci.diff_ids[0], "zlib1g": tiny_oci.diff_ids[0],
                        "demo": tiny_oci.diff_ids[1]}


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_registry_accepts_a_push(registry: RegistryServer, tiny_oci: OciImage) -> None:
    assert registry.host.startswith("127.0.0.1:")
    status, _, body = _get(f"{registry.url}/v2/")
    assert (status, json.loads(body)) == (200, {})
    reference = push(tiny_oci, registry.host, "test/tiny:pushed")
    assert reference == f"{registry.host}/test/tiny:pushed"
    status, _, body = _get(f"{registry.url}/v2/test/tiny/tags/list")
    assert status == 200 and "pushed" in json.loads(body)["tags"]
    status, headers, _ = _get(f"{registry.url}/v2/test/tiny/manifests/pushed",
                              {"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200
    assert headers["Docker-Content-Digest"] == tiny_oci.manifest_digest


def test_image_index_can_be_pushed(registry: RegistryServer, tmp_path: Path) -> None:
    index = build_image_index(tmp_path / "oci", {"linux/amd64": [HOSTILE_ITEMS[:2]],
                                                  "linux/arm64": [HOSTILE_ITEMS[:3]]}, tag="multi")
    push(index, registry.host, "test/multi:1")
    status, headers, _ = _get(f"{registry.url}/v2/test/multi/manifests/1",
                              {"Accept": "application/vnd.oci.image.index.v1+json"})
    assert status == 200 and headers["Docker-Content-Digest"] == index.index_digest


def test_auth_registry_requires_credentials(auth_registry: RegistryServer, tiny_oci: OciImage) -> None:
    assert auth_registry.username and auth_registry.password
    status, headers, body = _get(f"{auth_registry.url}/v2/")
    assert status == 401
    assert headers["Www-Authenticate"].startswith("Basic")
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    token = b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    assert _get(f"{auth_registry.url}/v2/", {"Authorization": f"Basic {token}"})[0] == 200
    wrong = b64encode(f"{auth_registry.username}:wrong".encode()).decode()
    assert _get(f"{auth_registry.url}/v2/", {"Authorization": f"Basic {wrong}"})[0] == 401

    with pytest.raises(SkopeoError, match=r"authentication required|unauthorized"):
        push(tiny_oci, auth_registry.host, "test/tiny:anonymous")
    with pytest.raises(SkopeoError) as failure:
        push(tiny_oci, auth_registry.host, "test/tiny:wrong", creds=(auth_registry.username, "x" + "y" * 20))
    assert "y" * 20 not in str(failure.value)
    assert auth_registry.creds is not None
    push(tiny_oci, auth_registry.host, "test/tiny:1", creds=auth_registry.creds)
    assert auth_registry.auth_file is not None
    inspected = json.loads(run_skopeo(["inspect", "--tls-verify=false", "--authfile",
                                       str(auth_registry.auth_file), f"docker://{auth_registry.host}/test/tiny:1"]))
    assert inspected["Digest"] == tiny_oci.manifest_digest


def _build_counting(arguments: tuple[str, str]) -> str:
    cache_root, log = arguments
    os.environ["CI_GATE_TEST_CACHE"] = cache_root

    def build(target: Path) -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        target.write_text("built")

    return str(cache.cached("entry", build))


def test_cache_builds_an_entry_once_across_processes(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_build_counting, [(str(tmp_path / "cache"), str(log))] * 8)
    assert len(set(results)) == 1
    assert Path(results[0]).read_text() == "built"
    assert len(log.read_text().splitlines()) == 1


def test_cache_failed_build_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_TEST_CACHE", str(tmp_path))

    def broken(target: Path) -> None:
        target.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache.cached("entry", broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_debian_images_are_real(debian_images: DebianImages,
                                syft_json: Callable[..., dict[str, Any]]) -> None:
    app = debian_images.app
    assert app.layer_digests[0] == debian_images.base.layer_digests[0]
    config = app.config()["config"]
    assert config["ExposedPorts"] == {"8080/tcp": {}} and config["User"] == APP_CONFIG["User"]
    assert config["Labels"]["org.opencontainers.image.base.name"] == "docker.io/library/debian:bookworm"
    inspected = json.loads(run_skopeo(["inspect", f"oci-archive:{debian_images.base_oci_archive}:bookworm"]))
    assert inspected["Digest"] == debian_images.base.manifest_digest
    document = syft_json(f"docker-archive:{debian_images.app_docker_archive}")
    counts: dict[str, int] = {}
    for artifact in document["artifacts"]:
        counts[artifact["type"]] = counts.get(artifact["type"], 0) + 1
    # minbase bookworm has ~88 packages; the app layer 52 npm deps + the app, 4 python dists.
    assert counts["deb"] >= 80 and counts["npm"] == 53 and counts["python"] == 4
    assert document["source"]["metadata"]["tags"] == ["docker.io/test/debian:app"]
    assert document["source"]["metadata"]["imageID"] == app.config_digest
    deb_layers = {a["locations"][0]["layerID"] for a in document["artifacts"] if a["type"] == "deb"}
    npm_layers = {a["locations"][0]["layerID"] for a in document["artifacts"] if a["type"] == "npm"}
    assert deb_layers == {app.diff_ids[0]} and npm_layers == {app.diff_ids[1]}


def test_synthetic_benchmark_image_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(__file__).resolve().parent.parent / "bench" / "make_synthetic.py"
    specification = importlib.util.spec_from_file_location("make_synthetic", path)
    assert specification is not None and specification.loader is not None
    make_synthetic = importlib.util.module_from_spec(specification)
    monkeypatch.setitem(sys.modules, "make_synthetic", make_synthetic)  # dataclasses look their module up
    specification.loader.exec_module(make_synthetic)
    first = make_synthetic.build_synthetic(tmp_path / "one", scale=0.002)
    second = make_synthetic.build_synthetic(tmp_path / "two", scale=0.002)
    assert first.image.manifest_digest == second.image.manifest_digest
    assert len(first.image.layer_digests) == 4
    assert first.packages == {"deb": 1, "python": 1, "npm": 2}
    inspected = json.loads(run_skopeo(["inspect", first.image.skopeo_ref]))
    assert inspected["Digest"] == first.image.manifest_digest
    listed = sum(len(_layer_members(first.image, index)) for index in range(4))
    assert first.files < listed  # directories come on top of the regular files
    status = next(m for m in _layer_members(first.image, 0) if m.name == "var/lib/dpkg/status")
    assert status.size > 0


def test_debian_mirror_comes_from_the_machine_sources() -> None:
    mirror = debian_mirror()
    assert mirror.startswith(("http://", "https://"))
    assert mirror in Path("/etc/apt/sources.list.d/debian.sources").read_text()
