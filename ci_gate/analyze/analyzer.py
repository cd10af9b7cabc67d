"""The analysis orchestrator: open an image, stream its layers once, and describe what is inside.

One pass over the layers feeds every consumer at once — the catalogers, the secret scanner, the
content searches and the capture of small system files — so the cost of an analysis stays close to
the cost of decompressing the image. Everything after the pass works on the squashed view.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_gate import __version__
from ci_gate.analyze import cache
from ci_gate.analyze.visitors import CatalogerVisitor, ContentSearchVisitor, FinalView, SecretVisitor
from ci_gate.errors import AnalysisError, CiGateError
from ci_gate.model import (
    Analysis,
    Dockerfile,
    FileRecord,
    ImageConfig,
    ImageIdentity,
    Layer,
    Package,
    SecretFinding,
)
from ci_gate.sources import open_image
from ci_gate.sources.interface import RawImage, SourceOptions

if TYPE_CHECKING:
    # The catalogers package imports every cataloger: a cached analysis must not pay for that.
    from ci_gate.secrets.scanner import SecretScanner
    from ci_gate.sources.filesystem import ImageFilesystem, LayerVisitor

OS_RELEASE_PATHS = (
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/alpine-release",
    "/etc/debian_version",
    "/etc/redhat-release",
    "/etc/centos-release",
    "/etc/system-release",
    "/etc/lsb-release",
    "/etc/SuSE-release",
)
ACCOUNT_PATHS = ("/etc/passwd", "/etc/group")
REDACTION_VERSION = "redaction-2"
"""Part of the cache key: an analysis cached before the final redaction pass is never served."""


@dataclass(frozen=True)
class AnalyzeOptions:
    source: SourceOptions = field(default_factory=SourceOptions)
    dockerfile: Path | None = None
    """The Dockerfile the image was built from (mode `actual`); otherwise one is guessed from history."""
    base_image: str | None = None
    """A reference or path of the base image; its layers mark this image's base layers."""
    use_cache: bool = True
    secret_rules: Path | None = None
    """A YAML file that adds to or changes the secret rules."""
    content_searches: Mapping[str, str] = field(default_factory=dict)
    """name → regex searched in file contents, for the files/content_regex_match trigger."""
    retrieve_files: tuple[str, ...] = ("/etc/passwd",)
    """Small files kept verbatim for the retrieved_files gate."""
    content_search_max_bytes: int = 10_000


def analyze_image(reference: str, options: AnalyzeOptions | None = None, progress: bool = False) -> Analysis:
    """Open `reference` with the matching source and analyse it (from the cache when it can)."""
    options = options or AnalyzeOptions()
    if reference.startswith("sbom:"):
        from ci_gate.redaction import redact_model, redact_text
        from ci_gate.sbom.reader import analysis_from_sbom

        # The final redaction pass: what an SBOM holds leaves the analyzer masked like an image's.
        return redact_model(analysis_from_sbom(Path(reference[len("sbom:"):])), redact_text)
    raw = open_image(reference, options.source)
    try:
        key = cache.key_for(raw, options_fingerprint(options))
        if options.use_cache and key is not None:
            cached = cache.load(key, raw)
            if cached is not None:
                return cached
        analysis = analyze_raw(raw, options, progress=progress)
        if options.use_cache and key is not None:
            cache.store(key, analysis)
        return analysis
    finally:
        raw.close()


def options_fingerprint(options: AnalyzeOptions) -> str:
    """What besides the image changes an analysis: the tool version and every content input."""
    parts = [__version__, REDACTION_VERSION, str(options.base_image or "")]
    for extra in (options.dockerfile, options.secret_rules):
        # The path as given and the content: the analysis names the Dockerfile's path (SARIF and the
        # annotations point at it), and a new Dockerfile must be judged, never the old one's result.
        parts.append(str(extra) if extra is not None else "")
        if extra is not None:
            try:
                parts.append(Path(extra).read_text(encoding="utf-8", errors="replace"))
            except OSError as error:
                parts.append(f"unreadable: {error.strerror}")
    parts.append(repr(sorted(options.content_searches.items())))
    parts.append(repr(options.retrieve_files))
    return "\x00".join(parts)


def analyze_raw(raw: RawImage, options: AnalyzeOptions, progress: bool = False) -> Analysis:
    """Analyse an opened image: one streaming pass, then the squashed view."""
    # Imported here, not at the top: a cached analysis needs none of them.
    from ci_gate.analyze.catalogers import ALL_CATALOGERS
    from ci_gate.analyze.catalogers.attribution import with_origin
    from ci_gate.analyze.catalogers.interface import CatalogContext, InflationBudget
    from ci_gate.analyze.distro import detect_distro
    from ci_gate.analyze.image_config import history_entries, image_config_from, platform_of, secrets_in_config
    from ci_gate.analyze.passwd import parse_group, parse_passwd
    from ci_gate.analyze.secret_settings import load_secret_settings
    from ci_gate.secrets.scanner import SecretScanner
    from ci_gate.sources.filesystem import walk_image

    scanner = SecretScanner.from_settings(load_secret_settings(options.secret_rules))
    history, history_warning = history_entries(raw.config, len(raw.layers))
    # A secret typed into a build step is reported once, as a finding; the kept text is masked.
    history = tuple(replace(h, created_by=scanner.redact(h.created_by), comment=scanner.redact(h.comment))
                    for h in history)
    created_by = {h.layer_index: h.created_by for h in history if h.layer_index is not None}
    layers = [
        Layer(index, blob.digest, blob.diff_id or "", blob.media_type, blob.size, created_by.get(index, ""))
        for index, blob in enumerate(raw.layers)
    ]
    final_view = FinalView()
    inflation_limit = options.source.limits.max_archive_inflation_bytes
    context = CatalogContext(final=final_view, layers=layers,
                             inflation=InflationBudget(inflation_limit, inflation_limit))
    secret_visitor = SecretVisitor(scanner)
    cataloger_visitor = CatalogerVisitor(ALL_CATALOGERS, context, options.source.limits)
    visitors: list[LayerVisitor] = [cataloger_visitor, secret_visitor]
    content_visitor = None
    if options.content_searches:
        content_visitor = ContentSearchVisitor(options.content_searches, options.content_search_max_bytes)
        visitors.append(content_visitor)
    capture = {*OS_RELEASE_PATHS, *ACCOUNT_PATHS, *options.retrieve_files}
    with _Progress(raw, enabled=progress) as shown:
        filesystem = walk_image(raw, visitors, options.source.limits, capture_paths=capture,
                                on_layer=shown.on_layer, on_progress=shown.on_progress)
    final_view.filesystem = filesystem

    def read_small(path: str) -> bytes | None:
        return filesystem.read(path, 1024 * 1024)

    distro = detect_distro(read_small)
    context.distro = distro
    packages: list[Package] = []
    for cataloger in ALL_CATALOGERS:
        try:
            packages.extend(cataloger.catalog(cataloger_visitor.evidence[id(cataloger)], context))
        except CiGateError:
            raise
        except Exception as error:  # one broken cataloger must not lose the rest of the inventory
            context.warnings.append(f"{cataloger.name}: failed: {type(error).__name__}")

    base_indexes, base_method = _base_layers(raw, layers, options)
    layers = [
        Layer(layer.index, layer.digest, layer.diff_id, layer.media_type, layer.size, layer.created_by,
              (layer.index in base_indexes) if base_method else None)
        for layer in layers
    ]
    packages = [with_origin(package, base_indexes) if base_method else package
                for package in packages]

    users, user_warnings = _parse_text(read_small("/etc/passwd"), parse_passwd)
    groups, group_warnings = _parse_text(read_small("/etc/group"), parse_group)

    dockerfile, dockerfile_text = _dockerfile(options.dockerfile, raw.config)
    build_file_secrets = scanner.scan_dockerfile(dockerfile.path, dockerfile_text) if dockerfile_text else []
    secrets = _final_secrets(secret_visitor.findings, [*secrets_in_config(scanner, raw.config), *build_file_secrets],
                             filesystem)
    dockerfile = replace(dockerfile, instructions=tuple(
        replace(i, value=scanner.redact(i.value), expanded=scanner.redact(i.expanded))
        for i in dockerfile.instructions))
    retrieved = {}
    for path in options.retrieve_files:
        content = read_small(path)
        if content is not None:
            retrieved[path] = content.decode("utf-8", errors="replace")

    warnings = [*raw.warnings, *filesystem.warnings, *([history_warning] if history_warning else []),
                *context.warnings,
                *user_warnings, *group_warnings]
    identity = ImageIdentity(
        reference=raw.reference,
        scheme=raw.scheme,
        manifest_digest=raw.manifest_digest,
        config_digest=raw.config_digest,
        repo_tags=tuple(raw.repo_tags),
        repo_digests=tuple(raw.repo_digests),
        platform=platform_of(raw.config),
        created=str(raw.config.get("created") or ""),
        layers=tuple(layers),
        history=history,
        total_size=sum(layer.size for layer in layers),
    )
    analysis = Analysis(
        identity=identity,
        config=_masked_config(image_config_from(raw.config), scanner),
        distro=distro,
        packages=tuple(sorted(packages, key=lambda p: (p.type, p.name, p.version))),
        users=tuple(users),
        groups=tuple(groups),
        files=(),  # redacted apart below: one pass over 100,000 records instead of a field-by-field walk
        secrets=secrets,
        content_matches=tuple(content_visitor.matches) if content_visitor else (),
        retrieved_files=retrieved,
        dockerfile=dockerfile,
        file_count=sum(1 for e in filesystem.iter_entries() if e.kind != "dir"),
        warnings=tuple(dict.fromkeys(warnings)),
        tool_version=__version__,
    )
    # The final redaction pass: every string (labels, passwd GECOS, package metadata, file names,
    # link targets, WorkingDir, Healthcheck, warnings ...) masked by the same rules that found the
    # secrets, before the analysis reaches any output, the cache or the server.
    from ci_gate.redaction import redact_model

    return replace(redact_model(analysis, scanner.redact), files=_file_records(filesystem, scanner.redact))


def _masked_config(config: ImageConfig, scanner: SecretScanner) -> ImageConfig:
    """The runtime config with every secret the rules recognise masked: a token inside a URL in
    an innocently named ENV, a label, or a command-line flag is reported once, as a finding."""

    def masked(items: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if items is None else tuple(scanner.redact(item) for item in items)

    env = []
    for variable in config.env:
        value = scanner.redact(variable.value)
        env.append(replace(variable, value=value, redacted=variable.redacted or value != variable.value))
    return replace(config, env=tuple(env), labels={k: scanner.redact(v) for k, v in config.labels.items()},
                   entrypoint=masked(config.entrypoint), cmd=masked(config.cmd), on_build=masked(config.on_build) or ())


def _parse_text(content: bytes | None, parser):  # type: ignore[no-untyped-def]
    if content is None:
        return [], []
    return parser(content.decode("utf-8", errors="replace"))


def _base_layers(raw: RawImage, layers: Sequence[Layer], options: AnalyzeOptions) -> tuple[set[int], str]:
    from ci_gate.analyze.base_image import base_layers

    base_digests: list[str] | None = None
    if options.base_image:
        base = open_image(options.base_image, options.source)
        try:
            base_digests = [blob.diff_id or blob.digest for blob in base.layers]
        finally:
            base.close()
    indexes, method = base_layers(raw.config, layers, base_digests)
    return set(indexes), method


def _final_secrets(file_findings: Iterable[SecretFinding], config_findings: Iterable[SecretFinding],
                   filesystem: ImageFilesystem) -> tuple[SecretFinding, ...]:
    """File findings marked `deleted` when the final filesystem no longer holds that version."""
    result: list[SecretFinding] = []
    for finding in file_findings:
        in_final = filesystem.layer_of(finding.path) == finding.layer_index
        result.append(finding if in_final else replace(finding, deleted=True))
    result.extend(config_findings)
    return tuple(result)


def _dockerfile(path: Path | None, config: Mapping[str, object]) -> tuple[Dockerfile, str]:
    """The Dockerfile (given, else guessed from the history) and the given file's text."""
    from ci_gate.analyze.dockerfile import guess_dockerfile, parse_dockerfile

    if path is None:
        history = config.get("history") or []
        return guess_dockerfile(history if isinstance(history, list) else []), ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read the Dockerfile {path}: {error}") from None
    return parse_dockerfile(text, str(path)), text


def _file_records(filesystem: ImageFilesystem, redact: Callable[[str], str]) -> tuple[FileRecord, ...]:
    """The file table, sorted by path, its text already through the final redaction pass: what
    `redact_model` makes of the records (`redact` on each path, kind and link target), without its
    generic walk of each of 100,000 records field by field."""
    kinds: dict[str, str] = {}
    records = []
    for e in sorted(filesystem.iter_entries(), key=attrgetter("path")):
        kind = kinds.get(e.kind)
        if kind is None:
            kind = kinds[e.kind] = redact(e.kind)
        records.append(FileRecord(redact(e.path), kind, e.mode, e.size, e.uid, e.gid,
                                  redact(e.link_target) if e.link_target else e.link_target, e.layer_index))
    return tuple(records)


class _Progress:
    """A live bar on a terminal; one line per layer in CI logs; nothing for tiny images."""

    def __init__(self, raw: RawImage, enabled: bool) -> None:
        self.raw = raw
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self._stream: object = None
        self._done_before = 0
        self._calls = 0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            # On stderr: stdout is the data (`ci-gate analyze -o json > sbom.json` must hold only JSON).
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TimeRemainingColumn(), transient=True, console=Console(stderr=True))
            self._progress.start()
            total = sum(blob.size for blob in self.raw.layers) or None
            self._task = self._progress.add_task("analyzing", total=total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_layer(self, index: int, count: int, stream: object) -> None:
        self._stream = stream
        self._done_before = sum(blob.size for blob in self.raw.layers[:index])
        blob = self.raw.layers[index]
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"layer {index + 1}/{count}")
        elif count and blob.size > 16 * 1024 * 1024:
            print(f"ci-gate: reading layer {index + 1}/{count} {blob.digest[:19]} ({blob.size / 1e6:.1f} MB)",
                  file=sys.stderr, flush=True)

    def on_progress(self, size: int) -> None:
        self._calls += 1
        if self._progress is None or self._task is None or self._calls % 256:
            return
        stored = getattr(self._stream, "stored_bytes", 0)
        self._progress.update(self._task, completed=self._done_before + stored)
