"""The catalogers, one module per ecosystem; `ALL_CATALOGERS` is what an image analysis runs.

To add an ecosystem: write a `Cataloger` subclass in its own module, import it here and append one
instance to `ALL_CATALOGERS`.
"""

from __future__ import annotations

from ci_gate.analyze.catalogers.apk import ApkCataloger
from ci_gate.analyze.catalogers.dotnet import DotnetDepsCataloger, DotnetPortableExecutableCataloger
from ci_gate.analyze.catalogers.dpkg import DpkgCataloger
from ci_gate.analyze.catalogers.golang import GoModuleBinaryCataloger
from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence, FinalView
from ci_gate.analyze.catalogers.java import JavaArchiveCataloger
from ci_gate.analyze.catalogers.jvm import JvmDistributionCataloger
from ci_gate.analyze.catalogers.npm import NpmCataloger
from ci_gate.analyze.catalogers.php import ComposerInstalledCataloger
from ci_gate.analyze.catalogers.python import PythonCataloger
from ci_gate.analyze.catalogers.rpm import RpmCataloger
from ci_gate.analyze.catalogers.ruby import GemSpecCataloger
from ci_gate.analyze.catalogers.rust import CargoAuditableBinaryCataloger

__all__ = ["ALL_CATALOGERS", "CatalogContext", "Cataloger", "Evidence", "FinalView"]

ALL_CATALOGERS: list[Cataloger] = [
    DpkgCataloger(),
    ApkCataloger(),
    RpmCataloger(),
    PythonCataloger(),
    NpmCataloger(),
    JavaArchiveCataloger(),
    JvmDistributionCataloger(),
    GoModuleBinaryCataloger(),
    CargoAuditableBinaryCataloger(),
    GemSpecCataloger(),
    ComposerInstalledCataloger(),
    DotnetDepsCataloger(),
    DotnetPortableExecutableCataloger(),
]
