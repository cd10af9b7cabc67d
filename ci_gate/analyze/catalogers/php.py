"""PHP packages installed by Composer: `vendor/composer/installed.json`.

Composer 1 writes a JSON array of packages; Composer 2 writes `{"packages": [...], "dev": ...}`. Both
carry each package's `name` (`vendor/project`), `version` and `license` list. syft's
php-composer-installed-cataloger reads every `installed.json`; so do we, but one that is not
Composer's (no package objects) is skipped quietly unless it sits under a `composer/` folder.
"""

from __future__ import annotations

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of
from ci_gate.model import Package

_KEPT_FIELDS = ("source", "dist", "type", "description", "homepage", "authors", "require", "time",
                "install-path", "keywords")
"""installed.json fields copied into the package metadata (small ones; `autoload` etc. are left out)."""


def composer_package_url(name: str, version: str) -> str:
    """pkg:composer/VENDOR/NAME@VERSION; more than one `/` in the name: the rest joined by `-`, as syft."""
    fields = name.split("/")
    vendor = fields[0] if len(fields) > 1 else ""
    project = "-".join(fields[1:]) if len(fields) > 1 else name
    return package_url("composer", vendor, project, version)


class ComposerInstalledCataloger(StreamingCataloger):
    name = "php-composer-installed-cataloger"
    patterns = ("*/installed.json",)
    max_bytes = 32 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        composer_folder = "/composer/" in evidence.path
        try:
            document = self.json_document(evidence)
        except EvidenceError:
            if composer_folder:  # elsewhere an installed.json may be another tool's: skipped quietly
                raise
            return []
        entries = document.get("packages") if isinstance(document, dict) else document
        if not isinstance(entries, list):
            if composer_folder:
                raise EvidenceError("neither a Composer 1 package list nor a Composer 2 "
                                    "{\"packages\": [...]} object")
            return []
        location = location_of(evidence, context)
        packages: list[Package] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            name, version = entry.get("name"), entry.get("version")
            if not isinstance(name, str) or not name or not isinstance(version, str):
                continue
            licenses = entry.get("license") or []
            if isinstance(licenses, str):
                licenses = [licenses]
            metadata = {field: entry[field] for field in _KEPT_FIELDS if field in entry}
            if isinstance(document, dict) and isinstance(document.get("dev-package-names"), list):
                metadata["dev"] = name in document["dev-package-names"]
            packages.append(Package(
                name=name,
                version=version,
                type="php-composer",
                purl=composer_package_url(name, version),
                licenses=tuple(str(item) for item in licenses if isinstance(item, str) and item),
                locations=(location,),
                found_by=self.name,
                metadata=metadata,
            ))
        return packages
