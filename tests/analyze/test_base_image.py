"""Which layers are the base image: from the user's base image, build history, labels, else layer 0."""

from __future__ import annotations

from typing import Any

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.analyze.base_image import base_layers, base_reference
from ci_gate.model import Layer
from tests.support.oci import OciImage


def layers(count: int) -> list[Layer]:
    return [Layer(i, f"sha256:{i:064x}", f"sha256:{i + 50:064x}", "application/vnd.oci.image.layer.v1.tar+gzip", 1)
            for i in range(count)]


def step(created_by: str, empty: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": "2024-01-01T00:00:00Z", "created_by": created_by}
    if empty:
        entry["empty_layer"] = True
    return entry


DEBIAN_BASE = [
    step("/bin/sh -c #(nop) ADD file:5d6b639e8b6bcc011730f3a8d1bbbd1d8b3a5a1c82ec2bfb8c54e1e6a3e2b0a7 in / "),
    step('/bin/sh -c #(nop)  CMD ["bash"]', empty=True),
]
PYTHON_ON_DEBIAN = [
    *DEBIAN_BASE,
    step("/bin/sh -c set -eux; apt-get update; apt-get install -y ca-certificates"),
    step("ENV PYTHON_VERSION=3.11.9", empty=True),
    step("RUN /bin/sh -c set -eux; wget python.tar.xz; make install # buildkit"),
    step('CMD ["python3"]', empty=True),
]


def test_the_users_base_image_is_compared_layer_by_layer() -> None:
    image = layers(4)
    assert base_layers({}, image, [image[0].diff_id, image[1].digest]) == ({0, 1}, "base-image")
    indexes, method = base_layers({}, image, [image[0].diff_id, "sha256:" + "f" * 64])
    assert indexes == {0}
    assert method.startswith("base-image (only 1 of the base image's 2 layers")


def test_official_image_history_rootfs_add_and_cmd() -> None:
    history = [*DEBIAN_BASE, step("COPY app /app # buildkit"), step("RUN /bin/sh -c pip install ."),
               step('CMD ["python", "/app/main.py"]', empty=True)]
    assert base_layers({"history": history}, layers(3), None) == ({0}, "history")


def test_a_base_built_on_a_base_ends_at_its_own_cmd() -> None:
    history = [*PYTHON_ON_DEBIAN, step("WORKDIR /app"), step("COPY . /app"),
               step('CMD ["python", "app.py"]', empty=True)]
    # debian rootfs + 2 python layers are the base; the app's WORKDIR and COPY layers are not.
    assert base_layers({"history": history}, layers(5), None) == ({0, 1, 2}, "history")


def test_a_rootfs_add_without_cmd_still_marks_the_base() -> None:
    history = [step("/bin/sh -c #(nop) ADD file:abc123 in / "), step("/bin/sh -c apk add curl")]
    assert base_layers({"history": history}, layers(2), None) == ({0}, "history")


def test_labels_are_reported_and_the_first_layer_is_the_fallback() -> None:
    config = {"config": {"Labels": {"org.opencontainers.image.base.name": "docker.io/library/debian:bookworm",
                                    "org.opencontainers.image.base.digest": "sha256:" + "a" * 64}},
              "history": [step("debootstrap --variant=minbase bookworm"), step("/bin/sh -c pip install x")]}
    assert base_layers(config, layers(2), None) == ({0}, "label+first-layer")
    assert base_reference(config) == "docker.io/library/debian:bookworm@sha256:" + "a" * 64
    assert base_reference({}, {"org.opencontainers.image.base.name": "alpine:3.19"}) == "alpine:3.19"
    assert base_layers({}, layers(3), None) == ({0}, "first-layer")
    assert base_layers({}, [], None) == (set(), "")


@pytest.mark.parametrize("history", [
    "not a list", [1, 2], [step("RUN a")],  # wrong types; a history that does not describe 2 layers
])
def test_unusable_history_falls_back(history: Any) -> None:
    assert base_layers({"history": history}, layers(2), None) == ({0}, "first-layer")


def test_a_cmd_mentioned_inside_a_run_is_not_a_cmd_step() -> None:
    history = [step("/bin/sh -c echo CMD is here"), step("/bin/sh -c make")]
    assert base_layers({"history": history}, layers(2), None) == ({0}, "first-layer")


@pytest.mark.slow
def test_real_base_image_marks_the_debian_layer(debian_app_oci: OciImage, debian_oci: OciImage) -> None:
    analysis = analyze_image(f"oci-dir:{debian_app_oci.path}",
                             AnalyzeOptions(base_image=f"oci-dir:{debian_oci.path}", use_cache=False))
    assert [layer.base for layer in analysis.identity.layers] == [True, False]
    assert {p.origin for p in analysis.packages if p.type == "deb"} == {"base"}
    assert {p.origin for p in analysis.packages if p.type != "deb"} == {"app"}
