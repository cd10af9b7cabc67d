""".NET dependencies: the `APP.deps.json` file the SDK writes beside every published application.

Its `libraries` object maps `Name/Version` to `{type, path, sha512, hashPath, ...}`. Libraries of type
`package` are NuGet packages. syft (1.x, dotnet-deps-cataloger) reports every library whatever its
type, the application itself (the `project` named like the file), project references and runtime
packs included; we report the same set so the inventories compare, and keep the library type in the
metadata so a consumer can tell a NuGet package from the application's own code. (syft reports
nothing when the file names no root project; we still report its libraries.)
"""

from __future__ import annotations

import json
import re
from typing import Any

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of, origin_of
from ci_gate.model import Package

_DEPS_FILE_NAME = re.compile(r"([^\\/]+)\.deps\.json$")


class DotnetDepsCataloger(StreamingCataloger):
    name = "dotnet-deps-cataloger"
    patterns = ("*.deps.json",)
    max_bytes = 32 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if evidence.truncated:
            raise EvidenceError(f"larger than {self.max_bytes:,} bytes; only the start was read")
        try:
            document: Any = json.loads(evidence.content)
        except (ValueError, UnicodeDecodeError) as error:
            raise EvidenceError(f"not valid JSON ({error})") from None
        libraries = document.get("libraries") if isinstance(document, dict) else None
        if not isinstance(libraries, dict):
            raise EvidenceError("no `libraries` object; not a .deps.json file")
        file_name = _DEPS_FILE_NAME.search(evidence.path)
        root_name = file_name.group(1) if file_name else ""
        location = location_of(evidence, context)
        origin = origin_of(evidence, context)
        packages: list[Package] = []
        for key in sorted(libraries):
            library = libraries[key]
            name, separator, version = key.partition("/")
            if not separator or not name or not isinstance(library, dict):
                continue
            library_type = str(library.get("type", ""))
            metadata = {
                "name": name,
                "version": version,
                "library_type": library_type,
                "path": library.get("path", ""),
                "sha512": library.get("sha512", ""),
                "hash_path": library.get("hashPath", ""),
                "root": library_type == "project" and name == root_name,
            }
            packages.append(Package(
                name=name,
                version=version,
                type="dotnet",
                purl=package_url("nuget", "", name, version),
                locations=(location,),
                found_by=self.name,
                metadata=metadata,
                origin=origin,
            ))
        return packages
