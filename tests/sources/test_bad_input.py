"""Bad input to the sources: each case is one SourceError line saying what is wrong and how to fix it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from ci_gate.errors import LimitExceededError, SourceError
from ci_gate.sources import _looks_like_scheme, open_image
from ci_gate.sources.interface import Limits, SourceOptions
from tests.sources.checks import copy_layout
from tests.sources.test_local_schemes import add_bytes, tar_directory
from tests.support.oci import OciImage, canonical_json

OPTIONS = SourceOptions()


def error_of(reference: str, options: SourceOptions = OPTIONS, kind: type[SourceError] = SourceError) -> str:
    with pytest.raises(kind) as caught:
        image = open_image(reference, options)
        image.close()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def rewrite_blob(layout: Path, digest: str, data: bytes) -> None:
    """Replace a blob's bytes but keep its name: the digest no longer matches."""
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.write_bytes(data)


@pytest.fixture
def layout(tiny_oci: OciImage, tmp_path: Path) -> Path:
    return copy_layout(tiny_oci.path, tmp_path / "layout")


# --- paths and schemes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reference, expected", [
    ("docker-archive:/nonexistent/image.tar", "docker-archive:/nonexistent/image.tar: no such file; check the path"),
    ("oci-archive:/nonexistent/image.tar", "oci-archive:/nonexistent/image.tar: no such file; check the path"),
    ("oci-dir:/nonexistent/layout", "oci-dir:/nonexistent/layout: no such directory; check the path"),
    ("dir:/nonexistent/rootfs", "dir:/nonexistent/rootfs: no such directory; check the path"),
    ("/nonexistent/image.tar", "/nonexistent/image.tar: no such file or directory; check the path"),
    ("./missing.tar", "./missing.tar: no such file or directory; check the path"),
])
def test_a_missing_path(reference: str, expected: str) -> None:
    assert error_of(reference) == expected


@pytest.mark.parametrize("reference, expected", [
    ("oci:./layout", "unknown image scheme 'oci'"),
    ("dockerarchive:/tmp/x.tar", "did you mean docker-archive:?"),
    ("podman:app:1", "unknown image scheme 'podman'"),
    ("file:/etc/passwd", "unknown image scheme 'file'"),
    ("ftp:/srv/image.tar", "unknown image scheme 'ftp'"),
])
def test_an_unknown_scheme(reference: str, expected: str) -> None:
    message = error_of(reference)
    assert expected in message
    assert "use one of docker-archive:, oci-archive:, oci-dir:, dir:, registry:, docker:, sbom:" in message


def test_image_names_with_tags_and_ports_are_not_mistaken_for_schemes() -> None:
    assert not _looks_like_scheme("ubuntu", "22.04")
    assert not _looks_like_scheme("localhost", "5000/app:1")
    assert not _looks_like_scheme("127.0.0.1", "5000/app")
    assert not _looks_like_scheme("registry.example.com", "443/app")
    assert _looks_like_scheme("oci", "./layout")


def test_a_scheme_without_a_location() -> None:
    assert error_of("oci-dir:") == "oci-dir: needs a location after the colon, e.g. oci-dir:image.tar"


def test_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar"
    empty.touch()
    assert "the file is empty; the image export failed" in error_of(str(empty))
    assert "the file is empty" in error_of(f"docker-archive:{empty}")
    assert "the file is empty" in error_of(f"oci-archive:{empty}")


def test_a_file_that_is_no_archive(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a tar archive at all\n" * 40)
    assert "not an image archive (not a tar file)" in error_of(str(text))
    assert "not a readable tar archive" in error_of(f"docker-archive:{text}")
    assert "not a readable tar archive" in error_of(f"oci-archive:{text}")


def test_a_tar_that_is_no_image(tmp_path: Path) -> None:
    plain = tmp_path / "rootfs.tar"
    with tarfile.open(plain, "w") as archive:
        add_bytes(archive, "etc/hostname", b"x\n")
    assert "a tar file but not an image archive (no manifest.json or oci-layout)" in error_of(str(plain))
    assert "not a docker archive (no manifest.json member)" in error_of(f"docker-archive:{plain}")
    assert "not an OCI archive, no oci-layout member" in error_of(f"oci-archive:{plain}")


def test_a_truncated_archive(tiny_docker_archive: Path, tmp_path: Path) -> None:
    data = tiny_docker_archive.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    message = error_of(f"docker-archive:{truncated}")
    assert "truncated" in message or "not a readable tar archive" in message or "missing from the archive" in message


def test_the_wrong_kind_of_archive_names_the_right_scheme(tiny_docker_archive: Path, tiny_oci_archive: Path) -> None:
    assert "use docker-archive:" in error_of(f"oci-archive:{tiny_docker_archive}")
    assert "use oci-archive:" in error_of(f"docker-archive:{tiny_oci_archive}")
    assert "use dir: for a root filesystem" in error_of(f"oci-dir:{Path(tiny_oci_archive).parent}")


# --- broken layouts --------------------------------------------------------------------------------------


def test_index_json_missing_or_invalid(layout: Path) -> None:
    (layout / "index.json").write_text("{not json")
    assert "index.json is not valid JSON" in error_of(f"oci-dir:{layout}")
    (layout / "index.json").write_text("[]")
    assert "index.json is not a JSON object" in error_of(f"oci-dir:{layout}")
    (layout / "index.json").write_text('{"schemaVersion": 2}')
    assert "index.json has no 'manifests' list" in error_of(f"oci-dir:{layout}")
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    assert "index.json lists no images" in error_of(f"oci-dir:{layout}")
    (layout / "index.json").unlink()
    assert "index.json is missing; the layout is incomplete, re-export it" in error_of(f"oci-dir:{layout}")


def test_a_manifest_naming_a_missing_blob(tiny_oci: OciImage, layout: Path, tmp_path: Path) -> None:
    (layout / "blobs" / "sha256" / tiny_oci.layer_digests[1].split(":")[1]).unlink()
    expected = f"names blob {tiny_oci.layer_digests[1]} which is missing from the layout"
    assert expected in error_of(f"oci-dir:{layout}")
    archive = tar_directory(layout, tmp_path / "layout.tar")
    assert "which is missing from the archive" in error_of(f"oci-archive:{archive}")
    (layout / "blobs" / "sha256" / tiny_oci.config_digest.split(":")[1]).unlink()
    assert f"names blob {tiny_oci.config_digest}" in error_of(f"oci-dir:{layout}")


def test_config_and_manifest_digest_mismatches(tiny_oci: OciImage, layout: Path) -> None:
    config = tiny_oci.config()
    config["config"]["User"] = "0"
    rewrite_blob(layout, tiny_oci.config_digest, canonical_json(config))
    message = error_of(f"oci-dir:{layout}")
    assert f"config does not match its digest (expected {tiny_oci.config_digest}, got sha256:" in message
    assert "re-export or re-pull it" in message
    manifest = tiny_oci.manifest()
    manifest["annotations"] = {"tampered": "yes"}
    rewrite_blob(layout, tiny_oci.manifest_digest, canonical_json(manifest))
    assert f"manifest does not match its digest (expected {tiny_oci.manifest_digest}" in error_of(f"oci-dir:{layout}")


def test_invalid_manifests(tiny_oci: OciImage, layout: Path) -> None:
    def with_manifest(document: object) -> str:
        data = json.dumps(document).encode() if not isinstance(document, bytes) else document
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        index = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(data)}]}
        (layout / "index.json").write_text(json.dumps(index))
        return error_of(f"oci-dir:{layout}")

    assert "manifest is not valid JSON" in with_manifest(b"\xff\xfe not json")
    assert "Docker schema 1 manifests are not supported" in with_manifest({"schemaVersion": 1, "fsLayers": []})
    manifest = tiny_oci.manifest()
    manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    assert "this is an OCI artifact, not a container image" in with_manifest(manifest)
    manifest = tiny_oci.manifest()
    manifest["layers"] = manifest["layers"][:1]
    assert "the manifest lists 1 layers but the config lists 2 diff_ids" in with_manifest(manifest)
    manifest = tiny_oci.manifest()
    manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    assert "is not a valid sha256/sha512 digest" in with_manifest(manifest)
    manifest = tiny_oci.manifest()
    manifest["layers"][0]["size"] = manifest["layers"][0]["size"] + 1
    assert "bytes but the manifest says" in with_manifest(manifest)


def test_a_hostile_digest_in_index_json_cannot_name_a_host_file(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../../../etc/hostname"
    (layout / "index.json").write_text(json.dumps(index))
    assert "is not a valid sha256/sha512 digest" in error_of(f"oci-dir:{layout}")


def test_a_blob_linked_out_of_the_layout_is_refused(tiny_oci: OciImage, layout: Path, tmp_path: Path) -> None:
    blob = layout / "blobs" / "sha256" / tiny_oci.layer_digests[0].split(":")[1]
    outside = tmp_path / "outside-blob"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    assert f"blob {tiny_oci.layer_digests[0]} is a link that leads outside the layout" in error_of(f"oci-dir:{layout}")


def test_the_metadata_limit(tiny_oci: OciImage) -> None:
    tight = SourceOptions(limits=Limits(max_metadata_bytes=64))
    message = error_of(f"oci-dir:{tiny_oci.path}", tight, LimitExceededError)
    assert "larger than the metadata limit (64 bytes)" in message


def test_a_docker_archive_whose_config_does_not_match_its_name(tmp_path: Path) -> None:
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    wrong_name = hashlib.sha256(b"something else").hexdigest() + ".json"
    path = tmp_path / "bad-config.tar"
    with tarfile.open(path, "w") as archive:
        add_bytes(archive, wrong_name, config)
        add_bytes(archive, "manifest.json", json.dumps([{"Config": wrong_name, "RepoTags": [], "Layers": []}]).encode())
    message = error_of(f"docker-archive:{path}")
    assert f"the config '{wrong_name}' does not match its digest sha256:{wrong_name[:-5]}" in message


def test_a_docker_archive_with_a_broken_manifest_json(tmp_path: Path) -> None:
    for content, expected in ((b"{", "manifest.json is not valid JSON"),
                              (b"{}", "manifest.json is not a list of images"),
                              (b'[{"RepoTags": []}]', "manifest.json entry lacks Config or Layers")):
        path = tmp_path / "broken.tar"
        with tarfile.open(path, "w") as archive:
            add_bytes(archive, "manifest.json", content)
        assert expected in error_of(f"docker-archive:{path}")


def test_a_docker_archive_naming_a_missing_layer(tmp_path: Path) -> None:
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "ab" * 32]}})
    name = hashlib.sha256(config).hexdigest() + ".json"
    path = tmp_path / "missing-layer.tar"
    with tarfile.open(path, "w") as archive:
        add_bytes(archive, name, config)
        add_bytes(archive, "manifest.json",
                  json.dumps([{"Config": name, "RepoTags": ["x:1"], "Layers": ["abc/layer.tar"]}]).encode())
    assert "layer 'abc/layer.tar' is missing from the archive" in error_of(f"docker-archive:{path}")


def test_several_images_in_a_docker_archive_need_a_choice(tiny_docker_archive: Path, tmp_path: Path) -> None:
    with tarfile.open(tiny_docker_archive) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    second = dict(manifest[0], RepoTags=["docker.io/test/other:2"])
    path = tmp_path / "two.tar"
    path.write_bytes(tiny_docker_archive.read_bytes())
    with tarfile.open(path, "a") as archive:
        add_bytes(archive, "manifest.json", json.dumps([manifest[0], second]).encode())
    assert "holds 2 images (docker.io/test/tiny:1, docker.io/test/other:2)" in error_of(f"docker-archive:{path}")
    image = open_image(f"docker-archive:{path}:test/other:2", OPTIONS)
    assert image.repo_tags == ["docker.io/test/other:2"]
    assert "no image tagged 'nope:1'" in error_of(f"docker-archive:{path}:nope:1")


def test_a_tar_member_larger_than_the_file_is_reported_as_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        add_bytes(archive, "manifest.json", b"[" + b" " * 4000 + b"]")
    data = buffer.getvalue()
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:2048])  # header intact, data cut short, no end-of-archive blocks
    message = error_of(f"docker-archive:{path}")
    assert "truncated" in message or "not a readable tar archive" in message
