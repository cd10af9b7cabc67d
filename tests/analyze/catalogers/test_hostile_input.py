"""Damaged evidence of every kind: the catalogers warn and go on, they never raise.

Each case mutates real evidence (bytes flipped, cut, duplicated) with a fixed seed, so a failure
reproduces exactly.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.apk import ApkCataloger
from ci_gate.analyze.catalogers.dpkg import DpkgCataloger
from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.analyze.catalogers.npm import NpmCataloger
from ci_gate.analyze.catalogers.python import PythonCataloger
from ci_gate.analyze.catalogers.rpm import RpmCataloger
from ci_gate.analyze.catalogers.rpm_db import read_database
from ci_gate.analyze.catalogers.rpm_header import HeaderError, parse_header
from ci_gate.model import Distro, Package
from tests.analyze.catalogers.rpm_databases import RpmRoots, build_rpm_roots
from tests.support.catalogers import SquashedView, layers_of

FIXTURES = Path(__file__).parent / "fixtures"
CASES = [
    (DpkgCataloger(), "/var/lib/dpkg/status", FIXTURES / "dpkg-base/var/lib/dpkg/status"),
    (ApkCataloger(), "/lib/apk/db/installed", FIXTURES / "apk/lib/apk/db/installed"),
    (PythonCataloger(), "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
     FIXTURES / "python/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO"),
    (NpmCataloger(), "/opt/app/node_modules/express/package.json",
     FIXTURES / "npm/opt/app/node_modules/express/package.json"),
]


def mutations(content: bytes, seed: int, count: int) -> list[bytes]:
    generator = random.Random(seed)
    found = []
    for _ in range(count):
        data = bytearray(content)
        for _ in range(generator.randint(1, 20)):
            choice = generator.random()
            position = generator.randrange(len(data)) if data else 0
            if choice < 0.4 and data:
                data[position] = generator.randrange(256)
            elif choice < 0.6:
                del data[position:position + generator.randint(1, 50)]
            elif choice < 0.8:
                data[position:position] = bytes(generator.randrange(256) for _ in range(generator.randint(1, 30)))
            else:
                data = data[:position]
        found.append(bytes(data))
    return found


def run(cataloger: Cataloger, path: str, versions: list[bytes]) -> tuple[list[Package], list[str]]:
    evidence = [Evidence(path, index, content, len(content)) for index, content in enumerate(versions)]
    context = CatalogContext(final=SquashedView(last_writer={path: len(versions) - 1}), layers=layers_of(len(versions)),
                             distro=Distro(id="debian", version_id="12"))
    return cataloger.catalog(evidence, context), context.warnings


@pytest.mark.parametrize(("cataloger", "path", "fixture"), CASES, ids=lambda value: getattr(value, "name", ""))
def test_mutated_evidence_never_raises(cataloger: Cataloger, path: str, fixture: Path) -> None:
    original = fixture.read_bytes()
    good, warnings = run(cataloger, path, [original])
    assert good and warnings == []
    for mutated in mutations(original, seed=len(path), count=150):
        run(cataloger, path, [original, mutated])  # a damaged final version after a good one
        packages, _ = run(cataloger, path, [mutated, original])  # and the other way round
        assert len(packages) == len(good)


@pytest.fixture(scope="module")
def rpm_roots(tmp_path_factory: pytest.TempPathFactory) -> RpmRoots:
    return build_rpm_roots(tmp_path_factory.mktemp("rpm-hostile"))


def test_mutated_rpm_headers_raise_only_header_errors(rpm_roots: RpmRoots) -> None:
    rejected = parsed = 0
    for blob in rpm_roots.blobs:
        for mutated in mutations(blob, seed=len(blob), count=200):
            try:
                parse_header(mutated)
                parsed += 1
            except HeaderError:
                rejected += 1
    assert rejected > 0 and parsed > 0  # both paths exercised; nothing else escaped


@pytest.mark.parametrize("backend", ["sqlite", "bdb", "ndb"])
def test_mutated_rpm_databases_never_raise(rpm_roots: RpmRoots, backend: str) -> None:
    folder = getattr(rpm_roots, backend) / "var/lib/rpm"
    (database,) = [path for path in folder.iterdir() if path.is_file()]
    content = database.read_bytes()
    path = "/var/lib/rpm/" + database.name
    assert len(run(RpmCataloger(), path, [content])[0]) == 3
    for mutated in mutations(content, seed=len(content), count=40):
        read_database(mutated)
        packages, _ = run(RpmCataloger(), path, [mutated])
        assert len(packages) <= 3
