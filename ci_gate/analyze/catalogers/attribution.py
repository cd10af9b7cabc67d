"""Which layer introduced a package, and the small helpers every cataloger shares.

A package database is one file rewritten by every install, so "the layer that last wrote the
database" credits every package to the last `apt-get install` (syft#645). Instead we look at every
version of the database the single pass saw, bottom layer first: a package was introduced by the
first layer of the unbroken run of database versions, ending with the final one, that hold it at
its final version. A package upgraded in layer 5 is credited to layer 5; one removed in layer 3 and
installed again in layer 6 is credited to layer 6.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.model import Distro, Location, Package, layer_origin, origin_for

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


def origin(context: CatalogContext, layer_index: int | None) -> str | None:
    """`base` or `app` for a package introduced by `layer_index`, None when the base is unknown."""
    return layer_origin(context.layers, layer_index)


def assign_origins(packages: Iterable[Package], base_layers: set[int]) -> list[Package]:
    """Packages with `origin` set from the layer of their first location (for callers that learn the
    base layers after cataloging)."""
    import dataclasses

    result = []
    for package in packages:
        layer_index = package.locations[0].layer_index if package.locations else None
        value = None if layer_index is None else origin_for(layer_index in base_layers)
        result.append(dataclasses.replace(package, origin=value))
    return result


def distro_label(distro: Distro | None) -> str:
    """syft's distro qualifier: `ID-VERSION_ID` (e.g. debian-12, alpine-3.19.1), or the id alone."""
    if distro is None or not distro.id:
        return ""
    return f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id


def decode(content: bytes) -> str:
    """Text of an evidence file; bytes that are not UTF-8 are replaced rather than refused."""
    return content.decode("utf-8", errors="replace")


def truncation_warning(context: CatalogContext, cataloger: str, item: Evidence) -> None:
    if item.truncated:
        context.warnings.append(
            f"{cataloger}: {item.path} (layer {item.layer_index + 1}) is {item.size} bytes; only the first "
            f"{len(item.content)} were read, packages past that point are missing"
        )


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


def clean_package(package: Package) -> Package:
    """The package with every text bounded and encodable (see `clean_text`): what a cataloger parsed
    from a hostile file can neither flood memory nor break a report writer."""
    import dataclasses

    return dataclasses.replace(
        package, name=clean_text(package.name, 1024), version=clean_text(package.version, 1024),
        purl=clean_text(package.purl, 4096), licenses=tuple(clean_text(item) for item in package.licenses[:64]),
        metadata=clean_value(package.metadata))
