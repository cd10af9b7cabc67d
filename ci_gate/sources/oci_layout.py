"""What OCI layouts, archives and registries share: media types, digests, index → manifest → config.

Every document (index, manifest, config) is read through `resolve_image`, which checks it against
the digest and size of the descriptor that named it, and against `Limits.max_metadata_bytes`,
before parsing it. Platform selection from an image index / Docker manifest list lives here too, so
`oci-dir:`, `oci-archive:`, the newer `docker save` layout and `registry:` choose the same way.
"""

from __future__ import annotations

import hashlib
import json
import platform as host_platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_gate.errors import LimitExceededError, SourceError, clipped, quoted
from ci_gate.sources.interface import LayerBlob, Limits, SourceOptions

if TYPE_CHECKING:
    from ci_gate.sources.archive import ClosingRawImage

# --- media types ---------------------------------------------------------------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
LAYER_MEDIA_TYPES = frozenset({
    OCI_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    DOCKER_LAYER_TAR, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, DOCKER_LAYER_FOREIGN,
})
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_MEDIA_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
ACCEPT_MANIFESTS = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
"""What a registry client asks for; registry 2.8 answers 404 for OCI manifests without OCI types."""

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"

# --- digests -------------------------------------------------------------------------------------

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def check_digest(digest: object, where: str) -> str:
    """The digest if it is a well-formed sha256/sha512 digest (so it is safe as a blob path)."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        shown = quoted(digest) if isinstance(digest, str) else type(digest).__name__
        raise SourceError(f"{where}: {shown} is not a valid sha256/sha512 digest; the image metadata is "
                          "corrupt, rebuild or re-export the image")
    return digest


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_HASHES[algorithm](data).hexdigest()}"


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm of `digest`."""
    return _HASHES[digest.split(":", 1)[0]]()


def verify_document(data: bytes, digest: str, size: int | None, what: str, where: str,
                    limits: Limits) -> None:
    """Raise unless `data` is within the metadata limit and matches the digest (and size when known)."""
    if len(data) > limits.max_metadata_bytes:
        raise LimitExceededError(f"{where}: {what} {digest[:19]}… is larger than the metadata limit "
                                 f"({limits.max_metadata_bytes} bytes); the image is corrupt or hostile")
    actual = digest_of(data, digest.split(":", 1)[0])
    if actual != digest:
        raise SourceError(f"{where}: {what} does not match its digest (expected {digest}, got {actual}); the "
                          "image is corrupt or was modified, re-export or re-pull it")
    if size is not None and size != len(data):
        raise SourceError(f"{where}: {what} {digest[:19]}… is {len(data)} bytes but its descriptor says "
                          f"{size}; the image is corrupt, re-export or re-pull it")


def parse_index(data: bytes, limit: int, where: str) -> dict[str, Any]:
    """A layout's index.json, read as at most `limit` + 1 bytes: parsed, or LimitExceededError when larger."""
    if len(data) > limit:
        raise LimitExceededError(f"{where}: index.json is larger than the metadata limit ({limit} bytes)")
    return parse_json_object(data, "index.json", where)


def parse_json_object(data: bytes, what: str, where: str) -> dict[str, Any]:
    """Parse a JSON document that must be an object."""
    try:
        document = json.loads(data)
    except RecursionError:
        raise SourceError(f"{where}: {what} is corrupt: its JSON is nested too deeply to be an image document; "
                          "re-export the image") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SourceError(f"{where}: {what} is not valid JSON ({error.__class__.__name__} at byte "
                          f"{getattr(error, 'pos', getattr(error, 'start', '?'))}); the image is corrupt, "
                          "re-export it") from None
    if not isinstance(document, dict):
        raise SourceError(f"{where}: {what} is not a JSON object; the image is corrupt, re-export it")
    if b"\\ud" in data or b"\\uD" in data:
        document = without_lone_surrogates(document)
    return document


def without_lone_surrogates(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every lone surrogate (a `\\ud800` escape, valid JSON but not Unicode text) in
    its keys and strings replaced by U+FFFD, so a label or env value cannot break the UTF-8 writers of
    every report. A loop, not recursion: the document may nest as deep as json.loads allowed."""

    def clean(text: str) -> str:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    root: dict[str, Any] = {}
    pending: list[tuple[Any, Any]] = [(document, root)]
    while pending:
        source, target = pending.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, str):
                value = clean(value)
            elif isinstance(value, dict | list):
                copy: Any = {} if isinstance(value, dict) else [None] * len(value)
                pending.append((value, copy))
                value = copy
            if isinstance(target, dict):
                target[clean(str(key))] = value
            else:
                target[key] = value
    return root


# --- descriptors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or index says about a blob it names."""

    media_type: str
    """Media type as written (may be empty in old Docker lists)."""
    digest: str
    size: int | None
    """Size in bytes; None when the writer left it out."""
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    """For entries of an index / manifest list."""

    @classmethod
    def parse(cls, document: object, where: str) -> Descriptor:
        if not isinstance(document, dict):
            raise SourceError(f"{where}: a descriptor is not a JSON object; the image metadata is corrupt")
        size = document.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise SourceError(f"{where}: descriptor size {quoted(size)} is not a non-negative integer")
        annotations = document.get("annotations") or {}
        if not isinstance(annotations, dict):
            annotations = {}
        platform_document = document.get("platform")
        return cls(
            media_type=str(document.get("mediaType") or ""),
            digest=check_digest(document.get("digest"), where),
            size=size,
            annotations={str(key): str(value) for key, value in annotations.items()},
            platform=(Platform.from_document(platform_document) if isinstance(platform_document, dict)
                      else None),
        )


@dataclass(frozen=True)
class LayerDescriptor:
    """One layer as the manifest names it, with the diff id the config gives it."""

    digest: str
    size: int
    media_type: str
    diff_id: str | None


@dataclass
class ResolvedImage:
    """The documents of one image, each already verified against its digest."""

    manifest: dict[str, Any]
    manifest_digest: str
    config: dict[str, Any]
    config_digest: str
    layers: list[LayerDescriptor]
    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    """Annotations of the layout's index.json entry that was chosen (ref.name, containerd image name)."""

    def repo_tags(self) -> list[str]:
        """The full image name a containerd / docker save layout records, if any."""
        name = self.annotations.get(CONTAINERD_NAME_ANNOTATION)
        return [name] if name else []

    def opened(self, reference: str, scheme: str, layers: list[LayerBlob],
               cleanups: list[Callable[[], None]] | None = None, repo_tags: list[str] | None = None,
               repo_digests: list[str] | None = None) -> ClosingRawImage:
        """The RawImage a source hands on for these verified documents and its layer blobs."""
        from ci_gate.sources.archive import ClosingRawImage

        return ClosingRawImage(
            reference=reference, scheme=scheme, config=self.config, layers=layers, manifest=self.manifest,
            manifest_digest=self.manifest_digest, config_digest=self.config_digest,
            repo_tags=self.repo_tags() if repo_tags is None else repo_tags, repo_digests=repo_digests or [],
            warnings=self.warnings, cleanups=cleanups or [],
        )


# --- platforms -----------------------------------------------------------------------------------

_MACHINE_TO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
    "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
    "riscv64": "riscv64", "mips64": "mips64",
}


@dataclass(frozen=True)
class Platform:
    """os/architecture[/variant] as OCI writes it."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SourceError(f"platform {text!r} is not os/arch[/variant]; use e.g. --platform linux/amd64 "
                              "or linux/arm64/v8")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Platform:
        return cls(str(document.get("os") or ""), str(document.get("architecture") or ""),
                   str(document.get("variant") or ""))

    @classmethod
    def host(cls) -> Platform:
        machine = host_platform.machine().lower()
        return cls("linux", _MACHINE_TO_ARCH.get(machine, machine or "amd64"))

    def matches(self, other: Platform) -> bool:
        """True when `other` (an index entry) satisfies this wanted platform; no variant = any variant."""
        return (self.os == other.os and self.architecture == other.architecture
                and (not self.variant or self.variant == (other.variant or _default_variant(other))))

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def _default_variant(platform: Platform) -> str:
    return "v8" if platform.architecture == "arm64" else ""


def wanted_platforms(options: SourceOptions) -> list[Platform]:
    """The platforms to try, best first: the user's --platform, else the host's, then linux/amd64."""
    if options.platform:
        return [Platform.parse(options.platform)]
    candidates = [Platform.host(), Platform("linux", "amd64")]
    return list(dict.fromkeys(candidates))


def select_platform(entries: Sequence[Descriptor], options: SourceOptions, where: str) -> Descriptor:
    """Pick the manifest for the wanted platform from an index / manifest list."""
    images = [entry for entry in entries
              if not (entry.platform and entry.platform.os == "unknown")  # buildkit attestations
              and entry.media_type not in LAYER_MEDIA_TYPES]
    if not images:
        raise SourceError(f"{where}: the image index lists no image manifests; the image is empty or corrupt")
    with_platform = [entry for entry in images if entry.platform is not None]
    if not with_platform:
        if len(images) == 1:
            return images[0]
        raise SourceError(f"{where}: the image index lists {len(images)} manifests without platforms; cannot "
                          "choose one, name the image by digest")
    for wanted in wanted_platforms(options):
        for entry in with_platform:
            assert entry.platform is not None
            if wanted.matches(entry.platform):
                return entry
    offered = sorted({str(entry.platform) for entry in with_platform})
    available = ", ".join(clipped(name) for name in offered[:10])
    if len(offered) > 10:
        available += f" and {len(offered) - 10} more"
    wanted_text = options.platform or " or ".join(str(p) for p in wanted_platforms(options))
    raise SourceError(f"{where}: no manifest for platform {wanted_text}; the index offers {available}. "
                      "Choose one with --platform")


# --- resolution ----------------------------------------------------------------------------------

FetchDocument = Callable[[Descriptor, str], bytes]
"""Given a descriptor and what it is ("manifest", "config"...), return at most max_metadata_bytes + 1 bytes
of the blob (the resolver checks digest, size and limit). Raise SourceError when the blob is absent."""


def document_kind(document: dict[str, Any], media_type: str) -> str:
    """'index', 'manifest' or 'schema1' from the document's own mediaType, the descriptor's, or its shape."""
    declared = str(document.get("mediaType") or media_type or "")
    if declared in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        return "schema1"
    if declared in INDEX_MEDIA_TYPES:
        return "index"
    if declared in MANIFEST_MEDIA_TYPES:
        return "manifest"
    if isinstance(document.get("manifests"), list):
        return "index"
    if isinstance(document.get("config"), dict) and isinstance(document.get("layers"), list):
        return "manifest"
    return "unknown"


def resolve_image(
    fetch: FetchDocument,
    descriptor: Descriptor,
    options: SourceOptions,
    where: str,
    *,
    depth: int = 0,
) -> ResolvedImage:
    """Follow a descriptor (index → … → manifest) to a verified manifest and config."""
    limits = options.limits
    if depth > 4:
        raise SourceError(f"{where}: image indexes are nested more than 4 deep; the image is corrupt or "
                          "hostile")
    what = "index" if descriptor.media_type in INDEX_MEDIA_TYPES else "manifest"
    data = fetch(descriptor, what)
    verify_document(data, descriptor.digest, descriptor.size, what, where, limits)
    document = parse_json_object(data, what, where)
    kind = document_kind(document, descriptor.media_type)
    if kind == "index":
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise SourceError(f"{where}: the image index has no 'manifests' list; the image is corrupt")
        chosen = select_platform([Descriptor.parse(entry, where) for entry in entries], options, where)
        return resolve_image(fetch, chosen, options, where, depth=depth + 1)
    if kind == "schema1":
        raise SourceError(f"{where}: Docker schema 1 manifests are not supported (deprecated since 2017); "
                          "re-push the image with a current Docker or skopeo")
    if kind != "manifest":
        raise SourceError(f"{where}: manifest {descriptor.digest[:19]}… has unknown media type "
                          f"{quoted(document.get('mediaType') or descriptor.media_type or 'none')}; not a "
                          "container image")
    resolved = _resolve_manifest(fetch, document, descriptor.digest, options, where)
    if options.platform:
        wanted = Platform.parse(options.platform)
        actual = Platform.from_document(resolved.config)
        if actual.os and actual.architecture and not wanted.matches(actual):
            resolved.warnings.append(f"--platform {wanted} was asked for but the image is for {actual}")
    return resolved


def _resolve_manifest(fetch: FetchDocument, manifest: dict[str, Any], manifest_digest: str,
                      options: SourceOptions, where: str) -> ResolvedImage:
    config_descriptor = Descriptor.parse(manifest.get("config"), f"{where} (manifest config)")
    if config_descriptor.media_type and config_descriptor.media_type not in CONFIG_MEDIA_TYPES:
        raise SourceError(f"{where}: the manifest's config has media type {quoted(config_descriptor.media_type)}: "
                          "this is an OCI artifact, not a container image")
    config_data = fetch(config_descriptor, "config")
    verify_document(config_data, config_descriptor.digest, config_descriptor.size, "config", where,
                    options.limits)
    config = parse_json_object(config_data, "config", where)
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise SourceError(f"{where}: the manifest has no 'layers' list; the image is corrupt")
    layer_descriptors = [Descriptor.parse(entry, f"{where} (layer {index})")
                         for index, entry in enumerate(raw_layers)]
    diff_ids = config_diff_ids(config, where)
    if len(diff_ids) != len(layer_descriptors):
        raise SourceError(f"{where}: the manifest lists {len(layer_descriptors)} layers but the config lists "
                          f"{len(diff_ids)} diff_ids; the image is corrupt, rebuild it")
    layers = []
    for index, (layer, diff_id) in enumerate(zip(layer_descriptors, diff_ids, strict=True)):
        if layer.media_type not in LAYER_MEDIA_TYPES:
            raise SourceError(f"{where}: layer {index} has media type {quoted(layer.media_type)}, which is not a "
                              "filesystem layer; this is not a container image")
        if layer.size is None:
            raise SourceError(f"{where}: layer {index} has no size in the manifest; the image is corrupt")
        layers.append(LayerDescriptor(layer.digest, layer.size, layer.media_type, diff_id))
    return ResolvedImage(manifest=manifest, manifest_digest=manifest_digest, config=config,
                         config_digest=config_descriptor.digest, layers=layers)


def config_diff_ids(config: dict[str, Any], where: str) -> list[str]:
    """rootfs.diff_ids of an image config, each checked to be a digest."""
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise SourceError(f"{where}: the image config has no rootfs.diff_ids; it is not an image config or "
                          "is corrupt")
    return [check_digest(diff_id, f"{where} (config diff_ids)") for diff_id in rootfs["diff_ids"]]


# --- layouts -------------------------------------------------------------------------------------


def layout_tag(descriptor: Descriptor) -> str | None:
    """The tag an OCI layout's index.json gives an entry (org.opencontainers.image.ref.name)."""
    return descriptor.annotations.get(REF_NAME_ANNOTATION)


def select_layout_entry(index: dict[str, Any], tag: str | None, where: str) -> Descriptor | list[Descriptor]:
    """Choose from a layout's index.json by tag: one descriptor, or several to pick a platform from.

    Rules: with a tag, the entries whose ref.name is that tag (or whose containerd image name ends in
    `:tag`); without a tag, all entries when they share one name (or none), else an error listing the tags.
    """
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise SourceError(f"{where}: index.json has no 'manifests' list; the layout is corrupt, re-export it")
    descriptors = [Descriptor.parse(entry, f"{where} (index.json)") for entry in entries]
    if not descriptors:
        raise SourceError(f"{where}: index.json lists no images; the layout is empty")
    tags = sorted({name for name in (layout_tag(d) for d in descriptors) if name})
    if tag is not None:
        chosen = [d for d in descriptors if layout_tag(d) == tag
                  or d.annotations.get(CONTAINERD_NAME_ANNOTATION, "").endswith(f":{tag}")]
        if not chosen:
            listing = _listing(tags)
            raise SourceError(f"{where}: no image tagged {tag!r} in the layout (tags: {listing}); use one of "
                              "those after the path, PATH:TAG")
    else:
        if len(tags) > 1:
            raise SourceError(f"{where}: the layout holds {len(tags)} images ({_listing(tags)}); choose one "
                              "with PATH:TAG")
        chosen = descriptors
    return chosen[0] if len(chosen) == 1 else chosen


def _listing(names: Sequence[str], most: int = 10) -> str:
    """Names for an error line, each quoted short, at most `most` of them (they come from the image)."""
    if not names:
        return "none"
    shown = ", ".join(clipped(name) for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def resolve_layout(fetch: FetchDocument, index: dict[str, Any], tag: str | None, options: SourceOptions,
                   where: str) -> ResolvedImage:
    """index.json of an OCI layout → the chosen image, verified."""
    chosen = select_layout_entry(index, tag, where)
    if isinstance(chosen, list):
        chosen = select_platform(chosen, options, where)
    resolved = resolve_image(fetch, chosen, options, where)
    resolved.annotations = dict(chosen.annotations)
    return resolved


def read_limited(stream: Any, limit: int) -> bytes:
    """At most limit + 1 bytes of a stream (one more than allowed shows that it is too large)."""
    chunks = []
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def split_location_tag(location: str, exists: Callable[[str], bool]) -> tuple[str, str | None]:
    """PATH or PATH:TAG, where PATH itself may contain ':' — the longest existing prefix is the path."""
    if exists(location):
        return location, None
    position = len(location)
    while (position := location.rfind(":", 0, position)) > 0:
        if exists(location[:position]):
            tag = location[position + 1:]
            return location[:position], (tag or None)
    return location, None
