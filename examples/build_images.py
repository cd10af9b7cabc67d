#!/usr/bin/env python3
"""Build the two example images as OCI layouts, without a Docker daemon.

    python examples/build_images.py [OUT]        # default OUT: examples/build

writes OUT/compliant and OUT/noncompliant (OCI image layouts, tag `example`), byte-for-byte
reproducible, with the project's OCI writer (tests/support/oci.py), and OUT/vulns.sqlite, an
offline vulnerability store imported from the OSV records in examples/vulndb/. Gate them with

    ci-gate gate oci-dir:examples/build/noncompliant --policy builtin:dod \
        --vuln-db examples/build/vulns.sqlite --dockerfile examples/images/noncompliant/Dockerfile \
        --junit junit.xml --sarif ci-gate.sarif

Each image is its `rootfs/` tree plus what git cannot store: the setuid bit of a helper and a
planted credential file (assembled here so no scanner flags this repository).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.support.oci import EPOCH, TarItem, build_oci_layout  # noqa: E402

TAG = "example"

COMPLIANT_CONFIG = {
    "User": "10001:10001",
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["/app/server"],
    "ExposedPorts": {"8080/tcp": {}},
    "Healthcheck": {"Test": ["CMD", "/app/healthcheck"], "Interval": 30_000_000_000, "Timeout": 3_000_000_000},
    "Labels": {
        "org.opencontainers.image.title": "ci-gate example: compliant",
        "org.opencontainers.image.description": "A service image that passes the builtin:dod policy",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.vendor": "ci-gate",
        "org.opencontainers.image.version": "1.0.0",
    },
}

NONCOMPLIANT_CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_ENV=production"],
    "Cmd": ["/app/server"],
    "ExposedPorts": {"22/tcp": {}, "80/tcp": {}},
}


def _history(*steps: str) -> list[dict[str, object]]:
    """Buildkit-style history: the COPY makes the layer, the rest are metadata-only steps."""
    entries: list[dict[str, object]] = [{"created": EPOCH, "created_by": "COPY rootfs/ / # buildkit"}]
    entries += [{"created": EPOCH, "created_by": step, "empty_layer": True} for step in steps]
    return entries


def _planted_files() -> list[TarItem]:
    """The noncompliant image's extras: a setuid helper and a credentials file."""
    key_id = "AKIA" + "IOSFODNN7" + "EXAMPLE"
    secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    credentials = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    return [
        TarItem("usr", kind="dir", mode=0o755),
        TarItem("usr/bin", kind="dir", mode=0o755),
        TarItem("usr/bin/su-helper", b"#!/bin/sh\nexit 1\n", mode=0o4755),
        TarItem("root", kind="dir", mode=0o700),
        TarItem("root/.aws", kind="dir", mode=0o700),
        TarItem("root/.aws/credentials", credentials.encode(), mode=0o600),
    ]


def build(out: Path) -> dict[str, Path]:
    """Write both layouts under `out`; return name → layout directory."""
    images = HERE / "images"
    compliant = build_oci_layout(
        out / "compliant", [images / "compliant" / "rootfs"], tag=TAG, config=COMPLIANT_CONFIG,
        history=_history('LABEL org.opencontainers.image.title="ci-gate example: compliant"',
                         "USER 10001:10001", "EXPOSE map[8080/tcp:{}]",
                         'HEALTHCHECK &{["CMD" "/app/healthcheck"] "30s" "3s" "0s" "0s" \'\\x00\'}',
                         'CMD ["/app/server"]'),
    )
    noncompliant = build_oci_layout(
        out / "noncompliant", [images / "noncompliant" / "rootfs", _planted_files()], tag=TAG,
        config=NONCOMPLIANT_CONFIG,
        history=[*_history("ENV APP_ENV=production", "EXPOSE map[22/tcp:{} 80/tcp:{}]", 'CMD ["/app/server"]'),
                 {"created": EPOCH, "created_by": "COPY extras / # buildkit"}],
    )
    return {"compliant": compliant.path, "noncompliant": noncompliant.path}


def build_vuln_db(out: Path) -> Path:
    """Import examples/vulndb (OSV records, Debian 12) into OUT/vulns.sqlite with `ci-gate db import`."""
    store = out / "vulns.sqlite"
    store.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "ci_gate.cli", "db", "import", str(HERE / "vulndb"), "--vuln-db",
                    str(store)], check=True, stdout=subprocess.DEVNULL)
    return store


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "build"
    for name, path in build(out).items():
        print(f"{name}: oci-dir:{path}")
    print(f"vulnerability store: {build_vuln_db(out)}")


if __name__ == "__main__":
    main()
