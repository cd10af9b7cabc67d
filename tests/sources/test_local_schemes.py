"""oci-dir:, oci-archive:, docker-archive:, dir: and bare-path detection, on the tiny and the Debian image."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from ci_gate.errors import SourceError
from ci_gate.sources import open_image
from ci_gate.sources.interface import SourceOptions
from tests.sources.checks import assert_layers_verify, skopeo_digest, stored_digest
from tests.support.oci import OciImage, TarItem, build_image_index, build_oci_layout, canonical_json

OPTIONS = SourceOptions()


def tar_directory(source: Path, target: Path, *, prefix: str = "") -> Path:
    """A plain tar of a directory's contents (names relative, optionally prefixed, e.g. './')."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=prefix + str(path.relative_to(source)), recursive=False)
    return target


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


# --- the tiny image through every local scheme -----------------------------------------------------


def test_oci_dir_matches_the_layout_and_skopeo(tiny_oci: OciImage) -> None:
    image = open_image(f"oci-dir:{tiny_oci.path}", OPTIONS)
    assert image.scheme == "oci-dir"
    assert image.manifest_digest == tiny_oci.manifest_digest == skopeo_digest(f"oci:{tiny_oci.path}:tiny")
    assert image.config_digest == tiny_oci.config_digest
    assert [layer.digest for layer in image.layers] == list(tiny_oci.layer_digests)
    assert [layer.media_type for layer in image.layers] == list(tiny_oci.layer_media_types)
    assert image.config["config"]["Labels"]["org.opencontainers.image.title"] == "ci-gate-tiny"
    assert_layers_verify(image)
    # gzip blobs are not seekable tars; the filesystem must decompress them.
    assert all(layer.seekable_path() is None for layer in image.layers)


def test_oci_archive_reads_the_skopeo_archive_in_place(tiny_oci: OciImage, tiny_oci_archive: Path) -> None:
    image = open_image(f"oci-archive:{tiny_oci_archive}", OPTIONS)
    assert image.scheme == "oci-archive"
    assert image.manifest_digest == tiny_oci.manifest_digest
    assert image.config_digest == tiny_oci.config_digest
    assert [layer.digest for layer in image.layers] == list(tiny_oci.layer_digests)
    assert_layers_verify(image)
    image.close()


def test_docker_archive_legacy_layout_from_skopeo(tiny_oci: OciImage, tiny_docker_archive: Path) -> None:
    image = open_image(f"docker-archive:{tiny_docker_archive}", OPTIONS)
    assert image.scheme == "docker-archive"
    assert image.repo_tags == ["docker.io/test/tiny:1"]
    assert image.config_digest == tiny_oci.config_digest
    assert image.manifest_digest is None  # a legacy docker save has no manifest
    # Uncompressed layer members: the stored blob is the diff_id's bytes.
    assert [layer.digest for layer in image.layers] == list(tiny_oci.diff_ids)
    assert {layer.media_type for layer in image.layers} == {"application/vnd.docker.image.rootfs.diff.tar"}
    assert_layers_verify(image)
    for layer in image.layers:
        location = layer.seekable_path()
        assert location is not None and location[0] == str(tiny_docker_archive)
        with open(location[0], "rb") as handle:
            handle.seek(location[1])
            assert hashlib.sha256(handle.read(layer.size)).hexdigest() == layer.digest.split(":")[1]
    image.close()


@pytest.mark.parametrize("kind", ["oci-dir", "oci-archive", "docker-archive", "dir"])
def test_a_bare_path_is_detected(kind: str, tiny_oci: OciImage, tiny_oci_archive: Path,
                                 tiny_docker_archive: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("x\n")
    path = {"oci-dir": tiny_oci.path, "oci-archive": tiny_oci_archive, "docker-archive": tiny_docker_archive,
            "dir": rootfs}[kind]
    image = open_image(str(path), OPTIONS)
    assert image.scheme == kind
    if kind != "dir":
        assert image.config_digest == tiny_oci.config_digest
    image.close()


def test_a_gzipped_docker_save_is_spooled_privately_and_removed_on_close(
        tiny_oci: OciImage, tiny_docker_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compressed = tmp_path / "tiny.tar.gz"
    compressed.write_bytes(gzip.compress(tiny_docker_archive.read_bytes()))
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    image = open_image(str(compressed), OPTIONS)
    assert image.config_digest == tiny_oci.config_digest
    # The spool has no name in $TMPDIR (a killed run leaves nothing): it is read through its descriptor.
    assert list(spool.iterdir()) == []
    spooled = os.stat(image.layers[0].path)  # type: ignore[attr-defined]
    assert stat.S_IMODE(spooled.st_mode) == 0o600 and spooled.st_nlink == 0
    assert_layers_verify(image)
    image.close()
    assert list(spool.iterdir()) == []


# --- layouts with several images ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_tag_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[OciImage, OciImage]:
    out = tmp_path_factory.mktemp("two-tags") / "oci"
    first = build_oci_layout(out, [[TarItem("etc/one", b"1\n")]], tag="one")
    second = build_oci_layout(out, [[TarItem("etc/two", b"2\n")], [TarItem("etc/three", b"3\n")]], tag="two",
                              compression="zstd")
    return first, second


def test_a_tag_selects_one_image_of_a_layout(two_tag_layout: tuple[OciImage, OciImage], tmp_path: Path) -> None:
    first, second = two_tag_layout
    image = open_image(f"oci-dir:{second.path}:two", OPTIONS)
    assert image.manifest_digest == second.manifest_digest
    assert [layer.media_type for layer in image.layers] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
    assert_layers_verify(image)
    assert open_image(f"oci-dir:{first.path}:one", OPTIONS).manifest_digest == first.manifest_digest
    # The same layout as a tar (members named ./...), with the tag after the path.
    archive = tar_directory(first.path, tmp_path / "layout.tar", prefix="./")
    from_archive = open_image(f"oci-archive:{archive}:two", OPTIONS)
    assert from_archive.manifest_digest == second.manifest_digest
    assert_layers_verify(from_archive)
    from_archive.close()


def test_several_images_and_no_tag_is_an_error_listing_the_tags(two_tag_layout: tuple[OciImage, OciImage]) -> None:
    with pytest.raises(SourceError, match=r"holds 2 images \(one, two\); choose one with PATH:TAG"):
        open_image(f"oci-dir:{two_tag_layout[0].path}", OPTIONS)
    with pytest.raises(SourceError, match=r"no image tagged 'three'.*tags: one, two"):
        open_image(f"oci-dir:{two_tag_layout[0].path}:three", OPTIONS)


@pytest.fixture(scope="module")
def two_platform_index(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("multi") / "oci"
    return build_image_index(out, {"linux/amd64": [[TarItem("etc/arch", b"amd64\n")]],
                                   "linux/arm64": [[TarItem("etc/arch", b"arm64\n")]]}, tag="multi")


def test_platform_selection_on_a_two_platform_index(two_platform_index) -> None:  # type: ignore[no-untyped-def]
    index = two_platform_index
    default = open_image(f"oci-dir:{index.path}", OPTIONS)
    host_default = "linux/arm64" if os.uname().machine in ("aarch64", "arm64") else "linux/amd64"
    assert default.manifest_digest == index.images[host_default].manifest_digest
    arm = open_image(f"oci-dir:{index.path}:multi", SourceOptions(platform="linux/arm64"))
    assert arm.manifest_digest == index.images["linux/arm64"].manifest_digest
    assert arm.config["architecture"] == "arm64"
    assert_layers_verify(arm)
    with pytest.raises(SourceError, match=r"no manifest for platform linux/s390x; the index offers "
                                          r"linux/amd64, linux/arm64\. Choose one with --platform"):
        open_image(f"oci-dir:{index.path}", SourceOptions(platform="linux/s390x"))
    with pytest.raises(SourceError, match="is not os/arch"):
        open_image(f"oci-dir:{index.path}", SourceOptions(platform="amd64"))


# --- docker save variants skopeo does not write -------------------------------------------------------


def test_newer_docker_save_with_an_oci_layout_inside(tmp_path: Path) -> None:
    """Docker 25+ writes manifest.json next to oci-layout/index.json/blobs; layers uncompressed."""
    layout = tmp_path / "oci"
    image = build_oci_layout(layout, [[TarItem("etc/a", b"a\n")], [TarItem("etc/b", b"b\n")]], tag="latest",
                             compression="none")
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["annotations"]["io.containerd.image.name"] = "docker.io/library/app:latest"
    (layout / "index.json").write_text(json.dumps(index))
    manifest_json = [{"Config": "blobs/sha256/" + image.config_digest.split(":")[1],
                      "RepoTags": ["app:latest"],
                      "Layers": ["blobs/sha256/" + digest.split(":")[1] for digest in image.layer_digests]}]
    (layout / "manifest.json").write_text(json.dumps(manifest_json))
    archive = tar_directory(layout, tmp_path / "save.tar")
    opened = open_image(str(archive), OPTIONS)
    assert opened.scheme == "docker-archive"
    assert opened.manifest_digest == image.manifest_digest  # resolved through the OCI layout inside
    assert opened.repo_tags == ["app:latest"]
    assert [layer.media_type for layer in opened.layers] == ["application/vnd.oci.image.layer.v1.tar"] * 2
    assert_layers_verify(opened)
    assert all(layer.seekable_path() is not None for layer in opened.layers)


def _legacy_archive(tmp_path: Path, layer_tars: list[bytes], members: list[tuple[str, bytes | str]],
                    layer_names: list[str]) -> Path:
    """A legacy docker save: <hex>.json config + the given layer members (bytes, or a symlink target)."""
    diff_ids = []
    for data in layer_tars:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    path = tmp_path / "legacy.tar"
    with tarfile.open(path, "w") as archive:
        add_bytes(archive, config_name, config)
        for name, content in members:
            if isinstance(content, str):
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE
                info.linkname = content
                archive.addfile(info)
            else:
                add_bytes(archive, name, content)
        add_bytes(archive, "manifest.json", json.dumps(
            [{"Config": config_name, "RepoTags": ["legacy:1"], "Layers": layer_names}]).encode())
    return path


def _layer_tar(*items: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in items:
            add_bytes(archive, name, data)
    return buffer.getvalue()


def test_legacy_layer_tar_directories_with_a_symlinked_duplicate_and_a_gzip_member(tmp_path: Path) -> None:
    plain = _layer_tar(("etc/plain", b"plain\n"))
    compressed = gzip.compress(_layer_tar(("etc/zipped", b"zipped\n")), mtime=0)
    path = _legacy_archive(
        tmp_path, [plain, plain, compressed],
        [("aaa/layer.tar", plain), ("bbb/layer.tar", "../aaa/layer.tar"), ("ccc/layer.tar", compressed)],
        ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"])
    image = open_image(f"docker-archive:{path}", OPTIONS)
    assert image.repo_tags == ["legacy:1"]
    assert [layer.media_type for layer in image.layers] == [
        "application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip"]
    # The gzip member's digest is of its stored (compressed) bytes, not its diff_id.
    assert image.layers[2].digest == "sha256:" + hashlib.sha256(compressed).hexdigest()
    assert image.layers[2].digest != image.layers[2].diff_id
    assert_layers_verify(image)


def test_hostile_member_names_in_the_outer_archive_never_touch_the_host(
        tiny_docker_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    escape_name = f"ci-gate-escape-{os.getpid()}"
    hostile = tmp_path / "hostile.tar"
    shutil.copy(tiny_docker_archive, hostile)
    with tarfile.open(hostile, "a") as archive:
        add_bytes(archive, f"../../{escape_name}", b"escaped\n")
        add_bytes(archive, f"/tmp/{escape_name}", b"absolute\n")
        info = tarfile.TarInfo("link-out")
        info.type = tarfile.SYMTYPE
        info.linkname = f"/tmp/{escape_name}-target"
        archive.addfile(info)
    image = open_image(f"docker-archive:{hostile}", OPTIONS)
    assert_layers_verify(image)
    assert not (tmp_path / escape_name).exists()
    assert not Path(f"/tmp/{escape_name}").exists()
    assert not Path(f"/tmp/{escape_name}-target").exists()


# --- dir: --------------------------------------------------------------------------------------------------


def test_dir_is_one_directory_layer_named_by_its_sorted_listing(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    (root / "bin").mkdir()
    (root / "bin" / "sh").symlink_to("/usr/bin/dash")
    image = open_image(f"dir:{root}", OPTIONS)
    [layer] = image.layers
    assert layer.directory_root == str(root.resolve())
    assert layer.media_type == "application/vnd.ci-gate.directory"
    listing = "".join(f"{path}\n" for path in sorted(["bin", "bin/sh", "etc", "etc/os-release"]))
    assert layer.digest == "sha256:" + hashlib.sha256(listing.encode()).hexdigest()
    assert layer.size == len("ID=debian\n")
    assert image.config["os"] == "linux" and image.config["architecture"]
    assert image.manifest is None and image.config_digest is None
    with pytest.raises(SourceError, match="read it through directory_root"):
        layer.open()
    (root / "etc" / "hostname").write_text("x\n")
    assert open_image(f"dir:{root}", OPTIONS).layers[0].digest != layer.digest


# --- the real Debian image -------------------------------------------------------------------------------


@pytest.mark.slow
def test_debian_oci_dir(debian_oci: OciImage) -> None:
    image = open_image(f"oci-dir:{debian_oci.path}:bookworm", OPTIONS)
    assert image.manifest_digest == debian_oci.manifest_digest == skopeo_digest(debian_oci.skopeo_ref)
    assert image.config_digest == debian_oci.config_digest
    assert_layers_verify(image)


@pytest.mark.slow
def test_debian_oci_archive(debian_oci: OciImage, debian_oci_archive: Path) -> None:
    image = open_image(f"oci-archive:{debian_oci_archive}", OPTIONS)
    assert image.manifest_digest == debian_oci.manifest_digest
    assert [layer.digest for layer in image.layers] == list(debian_oci.layer_digests)
    assert_layers_verify(image)
    image.close()


@pytest.mark.slow
def test_debian_docker_archive(debian_oci: OciImage, debian_docker_archive: Path) -> None:
    image = open_image(f"docker-archive:{debian_docker_archive}", OPTIONS)
    assert image.repo_tags == ["docker.io/test/debian:bookworm"]
    assert image.config_digest == debian_oci.config_digest
    assert [layer.digest for layer in image.layers] == list(debian_oci.diff_ids)
    for layer in image.layers:
        assert stored_digest(layer) == layer.digest == layer.diff_id
        assert layer.seekable_path() is not None
    image.close()


@pytest.mark.slow
def test_debian_dir(debian_rootfs_dir: Path) -> None:
    image = open_image(f"dir:{debian_rootfs_dir}", OPTIONS)
    [layer] = image.layers
    assert layer.directory_root == str(debian_rootfs_dir.resolve())
    assert layer.size > 50 * 1024 * 1024  # a minbase rootfs holds ~120 MB of regular files
    assert open_image(str(debian_rootfs_dir), OPTIONS).layers[0].digest == layer.digest  # stable
