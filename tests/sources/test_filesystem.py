"""The read-only image filesystem: squashing, whiteouts, links, limits, verification, lazy reads."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from ci_gate.errors import LimitExceededError, SourceError
from ci_gate.sources.filesystem import Entry, normalize_path, walk_image
from ci_gate.sources.interface import Limits, SourceOptions
from ci_gate.sources.oci_dir import OciDirSource
from tests.support.oci import TarItem, build_oci_layout


def open_layout(path: Path, limits: Limits | None = None):  # type: ignore[no-untyped-def]
    return OciDirSource().open(str(path), SourceOptions(limits=limits or Limits()))


def squash(tmp_path: Path, layers, compression: str = "gzip", limits: Limits | None = None, **kw):  # type: ignore[no-untyped-def]
    image = build_oci_layout(tmp_path / "oci", layers, compression=compression)
    raw = open_layout(image.path, limits)
    return walk_image(raw, limits=limits, **kw), image


def test_later_layers_win_and_remember_their_layer(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [
        [TarItem("etc/", kind="dir", mode=0o755), TarItem("etc/motd", b"base"), TarItem("etc/keep", b"k")],
        [TarItem("etc/motd", b"app", mode=0o600)],
    ])
    motd = fs.entry("/etc/motd")
    assert motd is not None and motd.layer_index == 1 and motd.mode == 0o600
    assert fs.read("/etc/motd") == b"app"
    assert fs.layer_of("/etc/keep") == 0
    assert fs.listdir("/etc") == ["keep", "motd"]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_reads_the_same(tmp_path: Path, compression: str) -> None:
    fs, _ = squash(tmp_path, [[TarItem("a/b.txt", b"hello " * 100)]], compression=compression)
    assert fs.read("/a/b.txt") == b"hello " * 100


def test_whiteout_removes_a_file_and_a_whole_directory(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [
        [TarItem("secret.txt", b"x"), TarItem("cache/", kind="dir"), TarItem("cache/a", b"a"),
         TarItem("cache/sub/b", b"b")],
        [TarItem(".wh.secret.txt"), TarItem(".wh.cache")],
    ])
    assert not fs.exists("/secret.txt")
    assert not fs.exists("/cache") and not fs.exists("/cache/a") and not fs.exists("/cache/sub/b")


def test_opaque_directory_hides_lower_layers_but_keeps_its_own_entries(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [
        [TarItem("d/", kind="dir"), TarItem("d/old", b"old"), TarItem("d/sub/deep", b"deep")],
        [TarItem("d/new", b"new"), TarItem("d/.wh..wh..opq")],
    ])
    assert fs.exists("/d/new")
    assert not fs.exists("/d/old") and not fs.exists("/d/sub/deep")


def test_a_file_replacing_a_directory_drops_its_children(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[TarItem("x/", kind="dir"), TarItem("x/y", b"y")], [TarItem("x", b"file now")]])
    assert fs.read("/x") == b"file now"
    assert not fs.exists("/x/y")


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[
        TarItem("usr/lib/os-release", b"ID=debian\n"),
        TarItem("etc/os-release", kind="symlink", link_target="../usr/lib/os-release"),
        TarItem("etc/abs", kind="symlink", link_target="/usr/lib/os-release"),
        TarItem("etc/climb", kind="symlink", link_target="../../../../../usr/lib/os-release"),
        TarItem("lib", kind="symlink", link_target="usr/lib"),
    ]])
    for path in ("/etc/os-release", "/etc/abs", "/etc/climb", "/lib/os-release"):
        assert fs.read(path) == b"ID=debian\n", path
    assert fs.resolve("/etc/climb") == "/usr/lib/os-release"


def test_symlink_loops_are_detected_not_followed_forever(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[
        TarItem("a", kind="symlink", link_target="b"),
        TarItem("b", kind="symlink", link_target="a"),
        TarItem("self", kind="symlink", link_target="./self/x"),
    ]])
    assert fs.resolve("/a") is None
    assert fs.read("/a") is None
    assert fs.read("/self") is None
    assert fs.exists("/a") is False
    assert fs.entry("/a", follow_symlinks=False) is not None


def test_hostile_entry_names_stay_inside_the_root_with_a_warning(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[
        TarItem("../../etc/evil", b"evil"),
        TarItem("/abs/file", b"abs"),
        TarItem("ok/../../x", b"x"),
    ]])
    assert fs.read("/etc/evil") == b"evil"
    assert fs.read("/abs/file") == b"abs"
    assert fs.read("/x") == b"x"
    assert any("../../etc/evil" in w for w in fs.warnings)
    assert any("/abs/file" in w for w in fs.warnings)
    # Nothing was ever created on the host outside the layout.
    assert not (tmp_path / "etc").exists() and not Path("/abs/file").exists()


def test_hard_links_read_their_target_and_a_missing_target_warns(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[
        TarItem("bin/real", b"#!binary", mode=0o755),
        TarItem("bin/alias", kind="hardlink", link_target="bin/real"),
        TarItem("bin/dangling", kind="hardlink", link_target="bin/nowhere"),
        TarItem("bin/up", kind="hardlink", link_target="../../bin/real"),
    ]])
    assert fs.read("/bin/alias") == b"#!binary"
    assert fs.read("/bin/up") == b"#!binary"
    assert fs.read("/bin/dangling") is None
    assert any("/bin/dangling" in w and "not in the image" in w for w in fs.warnings)


def test_visitors_see_every_version_in_every_layer(tmp_path: Path) -> None:
    class Collect:
        def __init__(self) -> None:
            self.seen: list[tuple[int, str, bytes]] = []

        def wants(self, entry: Entry) -> int:
            return 3 if entry.path.endswith(".env") else 0

        def visit(self, entry: Entry, content: bytes) -> None:
            self.seen.append((entry.layer_index, entry.path, content))

    collect = Collect()
    squash(tmp_path, [[TarItem("app/.env", b"one-secret")], [TarItem(".wh.app")], [TarItem("b.env", b"xy")]],
           visitors=[collect])
    assert collect.seen == [(0, "/app/.env", b"one"), (2, "/b.env", b"xy")]


def test_lazy_read_restreams_a_layer_for_an_uncaptured_file(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[TarItem("big/one", b"1" * 5000), TarItem("big/two", b"2" * 7000)]])
    assert fs.captured == {}
    assert fs.read("/big/two", max_bytes=10) == b"2" * 10


def test_capture_keeps_named_paths_without_a_second_pass(tmp_path: Path) -> None:
    fs, _ = squash(tmp_path, [[TarItem("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")]],
                   capture_paths=["/etc/passwd"])
    assert fs.captured == {(0, "/etc/passwd"): b"root:x:0:0::/root:/bin/sh\n"}


def test_a_decompression_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    limits = Limits(max_image_bytes=1_000_000)
    with pytest.raises(LimitExceededError, match="CI_GATE_MAX_IMAGE_BYTES"):
        squash(tmp_path, [[TarItem("zeros", b"\0" * 3_000_000)]], limits=limits)


def test_too_many_entries_stop_at_the_limit(tmp_path: Path) -> None:
    limits = Limits(max_files=10)
    with pytest.raises(LimitExceededError, match="CI_GATE_MAX_FILES"):
        squash(tmp_path, [[TarItem(f"f{i}", b"") for i in range(20)]], limits=limits)


def test_per_file_read_limit_bounds_what_visitors_get(tmp_path: Path) -> None:
    limits = Limits(max_file_read_bytes=100)
    fs, _ = squash(tmp_path, [[TarItem("big", b"x" * 1000)]], limits=limits, capture_paths=["/big"])
    assert fs.read("/big") == b"x" * 100


def _rewrite_blob(image_path: Path, digest: str, data: bytes) -> None:
    blob = image_path / "blobs" / "sha256" / digest.split(":")[1]
    os.chmod(blob, 0o644)
    blob.write_bytes(data)


def test_a_blob_that_does_not_match_its_digest_is_rejected(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a", b"aaaa")]])
    original = (image.blob_path(image.layer_digests[0])).read_bytes()
    tampered = gzip.compress(gzip.decompress(original).replace(b"aaaa", b"bbbb"), mtime=0)
    tampered = tampered[: len(original)].ljust(len(original), b"\0")
    _rewrite_blob(image.path, image.layer_digests[0], tampered)
    raw = open_layout(image.path)
    with pytest.raises(SourceError):
        walk_image(raw)


def test_a_diff_id_mismatch_is_rejected(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a", b"aaaa")]])
    raw = open_layout(image.path)
    raw.layers[0].diff_id = "sha256:" + "0" * 64
    with pytest.raises(SourceError, match="diff_id"):
        walk_image(raw)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_gzip_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem(f"f{i}", os.urandom(2000)) for i in range(20)]])
    raw = open_layout(image.path)
    blob = raw.layers[0]
    original = image.blob_path(image.layer_digests[0]).read_bytes()
    broken = original[: len(original) // 2] if damage == "truncate" else original[:10] + b"\xff" * 200
    path = tmp_path / "broken.gz"
    path.write_bytes(broken)
    blob.open = lambda: open(path, "rb")  # type: ignore[method-assign]  # noqa: SIM115
    with pytest.raises(SourceError) as caught:
        walk_image(raw)
    assert "\n" not in str(caught.value)


def test_normalize_path() -> None:
    assert normalize_path("./usr/bin/") == ("/usr/bin", False)
    assert normalize_path("../x") == ("/x", True)
    assert normalize_path("/etc/passwd") == ("/etc/passwd", True)
    assert normalize_path("a/./b/../c") == ("/a/c", False)


def test_directory_root_is_read_without_following_links_out(tmp_path: Path) -> None:
    from ci_gate.sources.interface import LayerBlob, RawImage

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret\n")
    (root / "etc" / "escape").symlink_to(outside)
    (root / "up").symlink_to("../outside.txt")

    class DirBlob(LayerBlob):
        digest = "sha256:" + "1" * 64
        size = 0
        media_type = "application/vnd.ci-gate.directory"
        directory_root = str(root)

        def open(self):  # type: ignore[no-untyped-def]
            raise AssertionError("a directory has no stream")

    raw = RawImage(reference=f"dir:{root}", scheme="dir", config={}, layers=[DirBlob()])
    fs = walk_image(raw, capture_paths=["/etc/hostname"])
    assert fs.read("/etc/hostname") == b"box\n"
    # Absolute link: resolved inside the image root, where there is no such file.
    assert fs.read("/etc/escape") is None
    # Relative link climbing out: clamped to the root, where outside.txt does not exist.
    assert fs.read("/up") is None
    assert json.dumps([e.path for e in fs.iter_entries()]).count("outside") == 0


def _inflate_all(kind: str, blob: bytes) -> list[bytes]:
    import io

    from ci_gate.sources.layers import _Inflater, _StoredReader

    stored = _StoredReader(io.BytesIO(blob), lambda: "test blob")
    head = stored.read()
    inflater = _Inflater(stored, kind, head, lambda: "test blob")
    chunks = []
    while (chunk := inflater.next()) is not None:
        chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_inflated_chunks_are_bounded_even_for_a_bomb(kind: str) -> None:
    import zstandard

    from ci_gate.sources.layers import _OUT_CHUNK

    payload = b"\0" * (40 * 1024 * 1024)
    blob = gzip.compress(payload, mtime=0) if kind == "gzip" else zstandard.ZstdCompressor().compress(payload)
    assert len(blob) < 200_000
    chunks = _inflate_all(kind, blob)
    assert max(len(c) for c in chunks) <= _OUT_CHUNK
    assert sum(len(c) for c in chunks) == len(payload)


def test_multi_member_gzip_and_trailing_padding_inflate_fully() -> None:
    blob = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0) + b"\0" * 512
    assert b"".join(_inflate_all("gzip", blob)) == b"first second"


@pytest.mark.parametrize("worker", ["0", "1"])
def test_a_tar_cut_inside_data_nobody_reads_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       worker: str) -> None:
    # The walk skips the data of a file no visitor reads (forward seeks on the layer stream, no copy); a
    # layer whose tar ends inside such data must still fail where the bytes ran out, as a read would.
    monkeypatch.setenv("CI_GATE_INFLATE_WORKER", worker)
    image = build_oci_layout(tmp_path / "oci", [[TarItem("small", b"s" * 100), TarItem("big", os.urandom(300_000)),
                                                 TarItem("after", b"a")]])
    raw = open_layout(image.path)
    tar = gzip.decompress(image.blob_path(image.layer_digests[0]).read_bytes())
    cut = tar[: 2048 + 100_000]  # headers and data of `small`, then a third of `big`'s data
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(gzip.compress(cut))
    raw.layers[0].open = lambda: open(path, "rb")  # noqa: SIM115
    with pytest.raises(SourceError, match=f"unexpected end of the tar stream at offset {len(cut)}"):
        walk_image(raw)
    # The whole layer, skipped the same way, reads every member.
    fs = walk_image(open_layout(image.path))
    assert fs.read("/after") == b"a" and fs.entry("/big").size == 300_000  # type: ignore[union-attr]
