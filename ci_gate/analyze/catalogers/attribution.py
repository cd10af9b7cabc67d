"""Which layer introduced a package, and the small helpers every cataloger shares.

A package database is one file rewritten by every install, so "the layer that last wrote the
database" credits every package to the last `apt-get install` (syft#645). Instead we look at every
version of the database the single pass saw, bottom layer first: a package was introduced by the
first layer of the unbroken run of database versions, ending with the final one, that hold it at
its final version. A package upgraded in layer 5 is credited to layer 5; one removed in layer 3 and
installed again in layer 6 is credited to layer 6.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.model import Distro, Location, Package, origin_for

Key = TypeVar("Key", bound=Hashable)


def introduced_layers(versions: Sequence[tuple[int, Mapping[Key, str]]]) -> dict[Key, int]:
    """For each key of the last database version, the layer that introduced its final value.

    `versions` holds (layer index, {package key: version}) for each version of one database file,
    in layer order; the last one is the database as the image ships it.
    """
    if not versions:
        return {}
    final_layer, final = versions[-1]
    introduced: dict[Key, int] = {key: final_layer for key in final}
    # Walk backwards while the package is still there at its final version.
    open_keys = set(final)
    for layer_index, database in reversed(versions[:-1]):
        if not open_keys:
            break
        for key in list(open_keys):
            if database.get(key) == final[key]:
                introduced[key] = layer_index
            else:
                open_keys.discard(key)
    return introduced


def final_versions(evidence: Iterable[Evidence], context: CatalogContext) -> dict[str, list[Evidence]]:
    """Every version of each evidence path still in the final filesystem, grouped by path, layer order.

    A path whose last version was deleted by a later layer is left out: its packages are not in the
    image as it runs.
    """
    grouped: dict[str, list[Evidence]] = {}
    for item in evidence:
        grouped.setdefault(item.path, []).append(item)
    kept: dict[str, list[Evidence]] = {}
    for path, items in grouped.items():
        items.sort(key=lambda item: item.layer_index)
        final_layer = context.final.layer_of(path)
        if final_layer is None:
            continue
        # Versions written after the final one cannot exist; versions before it are history.
        history = [item for item in items if item.layer_index <= final_layer]
        # When the final entry is not a version we saw (a later layer made it a symlink, a hard link
        # or a folder), what the image ships there is not this evidence.
        if history and history[-1].layer_index == final_layer:
            kept[path] = history
    return kept


def location(context: CatalogContext, path: str, layer_index: int | None) -> Location:
    """A location naming the layer by index and by diff id (what syft calls layerID)."""
    diff_id: str | None = None
    if layer_index is not None and 0 <= layer_index < len(context.layers):
        diff_id = context.layers[layer_index].diff_id or None
    return Location(path=path, layer_index=layer_index, layer_diff_id=diff_id)


def with_origin(package: Package, base_layers: Collection[int]) -> Package:
    """`package` with `origin` `base` or `app`, from the layer of its first location that has one.

    Catalogers leave `origin` unset: which layers are the base image is learnt after the walk
    (ci_gate.analyze.base_image), so the analyzer sets it here once it knows."""
    indexes = [location.layer_index for location in package.locations if location.layer_index is not None]
    if not indexes:
        return package
    return dataclasses.replace(package, origin=origin_for(indexes[0] in base_layers))


def distro_label(distro: Distro | None) -> str:
    """syft's distro qualifier: `ID-VERSION_ID` (e.g. debian-12, alpine-3.19.1), or the id alone."""
    if distro is None or not distro.id:
        return ""
    return f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id


def distro_metadata(distro: Distro | None) -> dict[str, str]:
    """The distro keys an OS package's metadata carries: syft's label, the id and the version id."""
    return {
        "distro": distro_label(distro),
        "distro_id": distro.id if distro else "",
        "distro_version": distro.version_id if distro else "",
    }


def decode(content: bytes) -> str:
    """Text of an evidence file; bytes that are not UTF-8 are replaced rather than refused."""
    return content.decode("utf-8", errors="replace")


def truncation_warning(context: CatalogContext, cataloger: str, item: Evidence) -> None:
    if item.truncated:
        context.warnings.append(
            f"{cataloger}: {item.path} (layer {item.layer_index + 1}) is {item.size} bytes; only the first "
            f"{len(item.content)} were read, packages past that point are missing"
        )


Entry = TypeVar("Entry")


def database_versions(context: CatalogContext, cataloger: str, path: str, versions: Sequence[Evidence],
                      parse: Callable[[str, list[str]], list[Entry]], key: Callable[[Entry], Key],
                      version: Callable[[Entry], str], unit: str) -> tuple[list[Entry], dict[Key, int]]:
    """The entries of a text package database's final version, and the layer that introduced each.

    Every version of the file (`versions`, bottom layer first) is parsed: its last entry is dropped
    when the file was cut short, and the versions give each entry (by `key`) the layer that wrote
    its final version. The final version's truncation and malformed parts are warned about; its
    readable `unit` (entries, stanzas) are kept."""
    history: list[tuple[int, dict[Key, str]]] = []
    final_entries: list[Entry] = []
    for position, item in enumerate(versions):
        problems: list[str] = []
        entries = parse(decode(item.content), problems)
        if item.truncated and entries:
            entries.pop()  # the last entry was cut off mid-way
        history.append((item.layer_index, {key(entry): version(entry) for entry in entries}))
        if position == len(versions) - 1:
            final_entries = entries
            truncation_warning(context, cataloger, item)
            if problems:
                context.warnings.append(
                    f"{cataloger}: {path} (layer {item.layer_index + 1}) is malformed: {problems[0]}"
                    + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                    + f"; the readable {unit} were kept"
                )
    return final_entries, introduced_layers(history)


MAX_FIELD_CHARS = 4096
"""Characters of one metadata text kept per package: an author or homepage is never longer in a real
package, and 300 package.json files with a 4 MiB author each must not cost 1.2 GB."""


def clean_text(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """A string fit for every output: not a string → "", cut to `limit`, lone surrogates (a JSON
    `\\ud800` escape, a file name that is not UTF-8) replaced so that encoding it can never fail."""
    if not isinstance(value, str):
        return ""
    text = value if len(value) <= limit else value[:limit] + "…"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_value(value: Any, limit: int = MAX_FIELD_CHARS, depth: int = 0) -> Any:
    """`clean_text` over every string of a JSON-like value (dicts, lists), at most 8 levels deep."""
    if isinstance(value, str):
        return clean_text(value, limit)
    if depth >= 8:
        return None
    if isinstance(value, Mapping):
        return {clean_text(str(key), 256): clean_value(item, limit, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_value(item, limit, depth + 1) for item in value]
    return value


Item = TypeVar("Item")
Built = TypeVar("Built")


def each(context: CatalogContext, cataloger: str, items: Iterable[tuple[str, Item]],
         build: Callable[[Item], Iterable[Built]]) -> list[Built]:
    """`build` applied to each item, where one failing item costs only itself: a package that cannot
    be built (hostile text, a parser bug) is a warning naming where it was, and the rest stands."""
    built: list[Built] = []
    for where, item in items:
        try:
            built.extend(build(item))
        except Exception as error:  # per package, never per ecosystem
            # Only the type: an unexpected exception's text may quote the file's content (a secret).
            context.warnings.append(f"{cataloger}: {clean_text(where, 200)}: skipped, it could not be read "
                                    f"({type(error).__name__})")
    return built


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedEntry = TypeVar("NamedEntry", bound=_Named)


def each_entry(context: CatalogContext, cataloger: str, path: str, entries: Iterable[NamedEntry],
               build: Callable[[NamedEntry], Iterable[Built]]) -> list[Built]:
    """`each` over the entries of a package database at `path`; a broken one is `PATH: package NAME`."""
    return each(context, cataloger, ((f"{path}: package {entry.name}", entry) for entry in entries), build)


def clean_package(package: Package) -> Package:
    """The package with every text bounded and encodable (see `clean_text`): what a cataloger parsed
    from a hostile file can neither flood memory nor break a report writer."""
    import dataclasses

    return dataclasses.replace(
        package, name=clean_text(package.name, 1024), version=clean_text(package.version, 1024),
        purl=clean_text(package.purl, 4096), licenses=tuple(clean_text(item) for item in package.licenses[:64]),
        metadata=clean_value(package.metadata))


class FileVersionsCataloger(Cataloger):
    """A cataloger of files it reads whole in every version (package databases, package manifests):
    each path still in the final filesystem is cataloged from all its versions, so every package
    gets the layer that introduced it, and one broken file costs only itself."""

    def catalog(self, evidence: Sequence[Evidence], context: CatalogContext) -> list[Package]:
        by_path = sorted(final_versions(evidence, context).items())
        return each(context, self.name, ((path, (path, versions)) for path, versions in by_path),
                    lambda item: self.catalog_file(item[0], item[1], context))

    @abc.abstractmethod
    def catalog_file(self, path: str, versions: list[Evidence], context: CatalogContext) -> list[Package]:
        """The packages of the file at `path`, from its versions (bottom layer first)."""
