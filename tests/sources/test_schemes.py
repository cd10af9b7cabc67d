"""One tuple of image-reference schemes: every reader is registered under one, and `sbom:` is known."""

from __future__ import annotations

import pytest

from ci_gate.errors import SourceError
from ci_gate.sources import READERS, open_image, source_for
from ci_gate.sources.schemes import IMAGE_SCHEMES, LOCAL_PREFIXES, SCHEME_LIST, Scheme, without_name_scheme


def test_every_image_scheme_has_a_reader_and_sbom_is_read_by_the_analyzer() -> None:
    assert set(READERS) == set(IMAGE_SCHEMES) == set(Scheme) - {Scheme.SBOM}
    for scheme in IMAGE_SCHEMES:
        assert source_for(scheme).scheme == scheme


def test_sbom_is_a_known_scheme_not_an_unknown_image_name() -> None:
    assert "sbom:" in SCHEME_LIST
    assert Scheme("sbom") is Scheme.SBOM
    with pytest.raises(SourceError) as raised:
        open_image("sbom:/tmp/app.cdx.json")
    assert "unknown image scheme" not in str(raised.value)
    assert "an SBOM is not an image" in str(raised.value)


def test_local_and_named_schemes() -> None:
    assert "sbom:" in LOCAL_PREFIXES and "dir:" in LOCAL_PREFIXES and "registry:" not in LOCAL_PREFIXES
    assert without_name_scheme("registry:ghcr.io/org/app:1") == "ghcr.io/org/app:1"
    assert without_name_scheme("docker:app:1") == "app:1"
    assert without_name_scheme("dir:/rootfs") == "dir:/rootfs"
