"""Reading the image config blob: runtime config, history-to-layer mapping, platform."""

from __future__ import annotations

import json

import pytest

from ci_gate.analyze.image_config import REDACTED, history_entries, image_config_from, platform_of
from ci_gate.model import EnvVar, HistoryEntry, ImageConfig, from_dict, to_dict

SECRET_VALUE = "Zq8Xw2Lk5Vb9Nm3Rt7Yp"

NGINX_LIKE = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "config": {
        "User": "101:101",
        "ExposedPorts": {"8080/tcp": {}, "443/tcp": {}},
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"DB_PASSWORD={SECRET_VALUE}",
            "NGINX_VERSION=1.25.4",
            "EMPTY_TOKEN=",
            "NO_EQUALS",
        ],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "WorkingDir": "/usr/share/nginx/html",
        "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "Interval": 30000000000},
        "Labels": {
            "org.opencontainers.image.base.name": "docker.io/library/debian:bookworm-slim",
            "org.opencontainers.image.base.digest": "sha256:" + "a" * 64,
        },
        "Volumes": {"/var/cache/nginx": {}, "/data": {}},
        "StopSignal": "SIGQUIT",
        "OnBuild": ["RUN echo child"],
        "Shell": ["/bin/bash", "-c"],
    },
    "history": [
        {"created": "2024-02-12T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True},
        {"created_by": "RUN /bin/sh -c apt-get update # buildkit", "comment": "buildkit.dockerfile.v0"},
        {"created_by": "USER 101:101", "empty_layer": True},
    ],
}


def test_image_config_from_full_blob() -> None:
    config = image_config_from(NGINX_LIKE)
    assert config.user == "101:101"
    assert config.exposed_ports == ("443/tcp", "8080/tcp")
    assert config.env == (
        EnvVar("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        EnvVar("DB_PASSWORD", REDACTED, redacted=True),
        EnvVar("NGINX_VERSION", "1.25.4"),
        EnvVar("EMPTY_TOKEN", ""),
        EnvVar("NO_EQUALS", ""),
    )
    assert config.entrypoint == ("/docker-entrypoint.sh",)
    assert config.cmd == ("nginx", "-g", "daemon off;")
    assert config.working_dir == "/usr/share/nginx/html"
    assert config.healthcheck == {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "Interval": 30000000000}
    assert config.labels["org.opencontainers.image.base.name"] == "docker.io/library/debian:bookworm-slim"
    assert config.volumes == ("/data", "/var/cache/nginx")
    assert (config.stop_signal, config.on_build, config.shell) == ("SIGQUIT", ("RUN echo child",), ("/bin/bash", "-c"))
    rendered = json.dumps(to_dict(config))
    assert SECRET_VALUE not in rendered and SECRET_VALUE not in repr(config)
    assert from_dict(ImageConfig, to_dict(config)) == config


@pytest.mark.parametrize(
    "blob",
    [
        {},
        {"config": None},
        {"config": {"Env": None, "Cmd": None, "Entrypoint": None, "ExposedPorts": None, "Labels": None,
                    "Volumes": None, "Healthcheck": None, "User": None, "OnBuild": None, "Shell": None}},
        {"config": "not a mapping"},
    ],
)  # fmt: skip
def test_nulls_and_missing_parts(blob: dict[str, object]) -> None:
    assert image_config_from(blob) == ImageConfig()


def test_docker_legacy_capitalised_config_key() -> None:
    assert image_config_from({"Config": {"User": "app"}}).user == "app"


def test_history_entries_map_layers_in_order() -> None:
    entries, warning = history_entries(NGINX_LIKE, 2)
    assert warning is None
    assert entries == (
        HistoryEntry("2024-02-12T00:00:00Z", "/bin/sh -c #(nop) ADD file:abc in / ", "", False, 0),
        HistoryEntry("", '/bin/sh -c #(nop)  CMD ["bash"]', "", True, None),
        HistoryEntry("", "RUN /bin/sh -c apt-get update # buildkit", "buildkit.dockerfile.v0", False, 1),
        HistoryEntry("", "USER 101:101", "", True, None),
    )


@pytest.mark.parametrize(("layer_count", "mapped"), [(1, [0, None, None, None]), (3, [0, None, 1, None])])
def test_history_mismatch_is_tolerated_with_a_warning(layer_count: int, mapped: list[int | None]) -> None:
    entries, warning = history_entries(NGINX_LIKE, layer_count)
    assert [entry.layer_index for entry in entries] == mapped
    assert warning is not None and f"the image has {layer_count} layer(s)" in warning


def test_history_absent_or_malformed() -> None:
    assert history_entries({}, 3) == ((), None)
    assert history_entries({"history": None}, 1) == ((), None)
    entries, _ = history_entries({"history": [None, "x", {"created_by": "a"}]}, 1)
    assert entries == (HistoryEntry(created_by="a", layer_index=0),)


@pytest.mark.parametrize(
    ("blob", "platform"),
    [
        ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64/v8"),
        ({"os": "windows", "architecture": "amd64", "variant": None}, "windows/amd64"),
        ({}, "unknown/unknown"),
    ],
)
def test_platform_of(blob: dict[str, object], platform: str) -> None:
    assert platform_of(blob) == platform
