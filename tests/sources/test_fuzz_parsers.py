"""Property tests (hypothesis) of the parsers that read attacker bytes: the layer tar reader and the
index → manifest → config resolution. Whatever the input, the answer is a result or the stage's own
error (TarFormatError, SourceError), never another exception.

The suite runs a few dozen examples per property; a longer pass by hand:
`CI_GATE_FUZZ_EXAMPLES=20000 python -m pytest tests/sources/test_fuzz_parsers.py` (and
bench/fuzz_parsers.py for coverage-guided fuzzing with atheris).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_gate.errors import SourceError
from ci_gate.sources.interface import Limits, SourceOptions
from ci_gate.sources.oci_layout import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    resolve_image,
)
from ci_gate.sources.tarstream import PATH_MAX, MetadataBudget, TarFormatError, TarReader
from tests.support import hostile

EXAMPLES = int(os.environ.get("CI_GATE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the tar reader ----------------------------------------------------------------------------------------

_names = st.one_of(st.text(min_size=1, max_size=40), st.text(alphabet="ab/.", min_size=90, max_size=4200),
                   st.just("../../etc/passwd"), st.just("/abs/x"), st.just(".wh..wh..opq"))
_pax_values = st.one_of(st.integers(-10, 10**6).map(str), st.text(max_size=30), st.just("9" * 5000))
_pax = st.dictionaries(st.sampled_from(["path", "linkpath", "size", "uid", "gid", "comment", "x"]), _pax_values,
                       max_size=3)


@st.composite
def _members(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([b"0", b"1", b"2", b"5", b"6", b"7", b"x", b"g", b"L", b"Q"]))
    name = draw(_names)
    data = draw(st.binary(max_size=600))
    pax = draw(st.none() | _pax)
    if kind in (b"L",):
        return hostile.gnu_long_name(name)
    if kind in (b"x", b"g"):
        return hostile.pax_header(pax or {"path": name})
    header = hostile.header(name, len(data) if kind in (b"0", b"7") else 0, kind,
                            link=draw(_names) if kind in (b"1", b"2") else "", pax=pax)
    return header + data + hostile.padding(len(data))


@st.composite
def _tars(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(_members(), max_size=6))) + b"\0" * 1024)
    for _ in range(draw(st.integers(0, 4))):  # and flip a few bytes anywhere (a checksum may catch them)
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(_tars(), st.integers(10_000, 1 << 20))
def test_the_tar_reader_answers_members_or_a_format_error(data: bytes, budget: int) -> None:
    reader = TarReader(io.BytesIO(data), MetadataBudget(budget))
    try:
        for number, member in enumerate(reader):
            assert member.size >= 0
            assert len(member.name.encode("utf-8")) <= PATH_MAX and len(member.linkname.encode("utf-8")) <= PATH_MAX
            if number % 2:
                assert len(reader.read(member.size)) <= member.size
    except TarFormatError:
        pass


# --- index → manifest → config --------------------------------------------------------------------------------

_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                         st.text(max_size=20), st.sampled_from([OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP,
                                                                "sha256:" + "0" * 64, "md5:00", "linux", "amd64"]))
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["mediaType", "digest", "size", "platform", "os",
                                                        "architecture", "manifests", "layers", "config", "rootfs",
                                                        "diff_ids", "annotations", "schemaVersion"]), inner,
                                       max_size=4), max_leaves=12)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@st.composite
def _images(draw: st.DrawFn) -> tuple[dict[str, bytes], Descriptor]:
    """Real index, manifest and config documents, each possibly damaged, named by their true digests."""
    blobs: dict[str, bytes] = {}

    def damaged(document: dict[str, Any]) -> bytes:
        for _ in range(draw(st.integers(0, 2))):
            target: Any = document
            path = draw(st.lists(st.sampled_from(["layers", "config", "manifests", "rootfs", 0, "platform"]),
                                 max_size=3))
            for step in path:
                if isinstance(target, dict) and step in target:
                    target = target[step]
                elif isinstance(target, list) and isinstance(step, int) and target:
                    target = target[0]
            if isinstance(target, dict):
                key = draw(st.sampled_from(["mediaType", "digest", "size", "diff_ids", "os", "layers", "x"]))
                # A copy: a drawn value must never be changed in place by a later damage.
                target[key] = copy.deepcopy(draw(_JSON))
        if draw(st.integers(0, 9)) == 0:
            return b"[" * draw(st.integers(1, 5000))
        return json.dumps(document).encode()

    def put(data: bytes) -> str:
        digest = _digest(data)
        blobs[digest] = data
        return digest

    layer_count = draw(st.integers(0, 3))
    layer = {"mediaType": OCI_LAYER_GZIP, "digest": "sha256:" + "1" * 64, "size": 10}
    config = {"os": "linux", "architecture": draw(st.sampled_from(["amd64", "arm64"])),
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64] * layer_count}}
    config_bytes = damaged(config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": put(config_bytes), "size": len(config_bytes)},
                "layers": [dict(layer) for _ in range(layer_count)]}
    manifest_bytes = damaged(manifest)
    manifest_digest = put(manifest_bytes)
    if draw(st.booleans()):
        return blobs, Descriptor(OCI_MANIFEST, manifest_digest, len(manifest_bytes))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    index_bytes = damaged(index)
    return blobs, Descriptor(OCI_INDEX, put(index_bytes), len(index_bytes))


@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(_images(), st.sampled_from([None, "linux/amd64", "linux/arm64/v8"]))
def test_resolution_answers_an_image_or_a_source_error(image: tuple[dict[str, bytes], Descriptor],
                                                       platform: str | None) -> None:
    blobs, top = image

    def fetch(descriptor: Descriptor, what: str) -> bytes:
        if descriptor.digest not in blobs:
            raise SourceError(f"blob {descriptor.digest} is missing")
        return blobs[descriptor.digest]

    options = SourceOptions(platform=platform, limits=Limits(max_metadata_bytes=64 * 1024))
    try:
        resolved = resolve_image(fetch, top, options, "fuzz")
    except SourceError as error:
        assert len(str(error)) < 1000
        return
    assert len(resolved.layers) == len(resolved.config["rootfs"]["diff_ids"])
    assert all(layer.digest.startswith(("sha256:", "sha512:")) for layer in resolved.layers)
