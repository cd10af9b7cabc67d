"""Open an image from any scheme ci-gate knows (`ci_gate.sources.schemes`; names follow syft's).

Without a scheme, an existing path is detected (a directory with an oci-layout file → oci-dir,
another directory → dir, a tar with manifest.json → docker-archive, a tar with oci-layout →
oci-archive) and anything else is an image reference, tried in the local daemon, then the registry.
"""

from __future__ import annotations

import difflib
import importlib
import os
import tarfile

from ci_gate.errors import SourceError
from ci_gate.sources.interface import ImageSource, RawImage, SourceOptions
from ci_gate.sources.schemes import IMAGE_SCHEMES, SCHEME_LIST, SCHEMES, UNSUPPORTED_SCHEMES, Scheme

__all__ = ["READERS", "detect_path_scheme", "open_image", "source_for"]

# Imported on first use: a cached analysis must not pay for `requests` and every reader at start-up.
READERS: dict[Scheme, str] = {
    Scheme.DOCKER_ARCHIVE: "ci_gate.sources.docker_archive:DockerArchiveSource",
    Scheme.OCI_ARCHIVE: "ci_gate.sources.oci_archive:OciArchiveSource",
    Scheme.OCI_DIR: "ci_gate.sources.oci_dir:OciDirSource",
    Scheme.DIR: "ci_gate.sources.directory:DirectorySource",
    Scheme.REGISTRY: "ci_gate.sources.registry:RegistrySource",
    Scheme.DOCKER: "ci_gate.sources.docker_daemon:DockerDaemonSource",
}
"""The reader of each image scheme (every scheme but `sbom`, which the analyzer reads)."""


def source_for(scheme: str) -> ImageSource:
    module_name, _, class_name = READERS[Scheme(scheme)].partition(":")
    source_class: type[ImageSource] = getattr(importlib.import_module(module_name), class_name)
    return source_class()


def open_image(reference: str, options: SourceOptions | None = None) -> RawImage:
    """Open `reference` (with or without a scheme) or raise SourceError with a one-line fix."""
    options = options or SourceOptions()
    reference = reference.strip()
    if not reference:
        raise SourceError(f"no image given; name one as SCHEME:LOCATION ({SCHEME_LIST}) or a path")
    scheme, separator, location = reference.partition(":")
    if separator and scheme == Scheme.SBOM:
        raise SourceError(f"{reference}: an SBOM is not an image; give it to `ci-gate analyze` or `ci-gate gate`, "
                          "which read sbom:PATH themselves")
    if separator and scheme in IMAGE_SCHEMES:
        if not location:
            raise SourceError(f"{scheme}: needs a location after the colon, e.g. {scheme}:{_example(scheme)}")
        return source_for(scheme).open(location, options)
    if separator and _looks_like_scheme(scheme, location):
        suggestion = difflib.get_close_matches(scheme, [str(s) for s in SCHEMES], n=1, cutoff=0.6)
        hint = f"did you mean {suggestion[0]}:? " if suggestion else ""
        raise SourceError(f"unknown image scheme {scheme!r} in {reference!r}; {hint}use one of {SCHEME_LIST}")
    if os.path.lexists(reference):
        detected = detect_path_scheme(reference)
        return source_for(detected).open(reference, options)
    if reference.startswith(("/", "./", "../", "~")) or reference.endswith((".tar", ".tar.gz", ".tgz")):
        raise SourceError(f"{reference}: no such file or directory; check the path")
    return _open_bare_reference(reference, options)


def _example(scheme: str) -> str:
    examples = {"registry": "ghcr.io/org/app:1.0", "docker": "app:latest", "dir": "./rootfs"}
    return examples.get(scheme, "image.tar")


def _looks_like_scheme(prefix: str, rest: str) -> bool:
    """True when `prefix:` is meant as a scheme rather than `name:tag` or `host:port/...`."""
    if not prefix or "/" in prefix or "." in prefix or prefix == "localhost":
        return False
    if prefix in UNSUPPORTED_SCHEMES:
        return True
    if rest.startswith(("/", "./", "../", "~")) or os.path.lexists(rest):
        return True
    if rest[:1].isdigit() and "/" in rest:
        return False  # host:port/repo
    return bool(difflib.get_close_matches(prefix, [str(s) for s in SCHEMES], n=1, cutoff=0.75))


def detect_path_scheme(path: str) -> str:
    """Which scheme reads an existing path; SourceError for a file that is no image archive."""
    if os.path.isdir(path):
        return "oci-dir" if os.path.isfile(os.path.join(path, "oci-layout")) else "dir"
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise SourceError(f"{path}: cannot read it ({error.strerror}); check the path and "
                          "permissions") from None
    if not head:
        raise SourceError(f"{path}: the file is empty; the image export failed, re-run docker save or skopeo "
                          "copy")
    from ci_gate.sources.archive import is_compressed

    if is_compressed(head):
        return "docker-archive"  # `docker save | gzip`; the reader decompresses it into a temp file
    names = set()
    try:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                names.add(member.name.removeprefix("./"))
                if "manifest.json" in names:
                    return "docker-archive"
    except (tarfile.TarError, EOFError, OSError):
        raise SourceError(f"{path}: not an image archive (not a tar file); give a docker-archive, an "
                          "oci-archive, an OCI layout directory or a root filesystem directory") from None
    if "oci-layout" in names:
        return "oci-archive"
    raise SourceError(f"{path}: a tar file but not an image archive (no manifest.json or oci-layout); for a "
                      "root filesystem tar, unpack it and use dir:")


def _open_bare_reference(reference: str, options: SourceOptions) -> RawImage:
    """An image name without a scheme: the local daemon when it runs and has it, else the registry."""
    from ci_gate.sources.docker_daemon import daemon_socket

    daemon_problem = ""
    try:
        socket_path = daemon_socket(options)
    except SourceError as error:
        socket_path, daemon_problem = "", str(error)
    if socket_path and os.path.exists(socket_path):
        try:
            return source_for("docker").open(reference, options)
        except SourceError as error:
            daemon_problem = str(error)
    try:
        return source_for("registry").open(reference, options)
    except SourceError as error:
        # A bare word may also be a mistyped path: say that nothing of that name exists on disk either.
        also = [f"the local Docker daemon could not give it either: {daemon_problem}"] if daemon_problem else []
        also.append(f"no file or directory named {reference!r} exists either")
        raise SourceError(f"{error} ({'; '.join(also)})") from None
