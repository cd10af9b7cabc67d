"""Fixtures of the STIG tests: a minimal RHEL 8 image with a real rpmdb (built once per session)."""

from __future__ import annotations

import pytest

from tests.support import oci


@pytest.fixture(scope="session")
def rhel8_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.stig.rpm_fixture import build_rhel8_rootfs

    work = tmp_path_factory.mktemp("rhel8")
    image = oci.build_oci_layout(work / "oci", [build_rhel8_rootfs(work)], tag="rhel8")
    return f"oci-dir:{image.path}"
