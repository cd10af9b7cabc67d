"""Read the image config blob (OCI image config / Docker image JSON) into the model.

Pure functions over the parsed JSON. Images in the wild carry nulls where a list is expected
(`"Env": null`, `"Cmd": null`), keys in either case, and history lists whose non-empty entries do
not add up to the layer count (squashed or hand-made images); all of that is tolerated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ci_gate.model import EnvVar, HistoryEntry, ImageConfig, SecretFinding
from ci_gate.secrets.names import is_secret_name

if TYPE_CHECKING:
    from ci_gate.secrets.scanner import SecretScanner

REDACTED = "<redacted>"
"""What replaces the value of a secret-looking environment variable."""


def image_config_from(config_blob: Mapping[str, Any]) -> ImageConfig:
    """The runtime configuration (`config` object) of an image config blob; missing parts are empty."""
    config = _mapping(config_blob.get("config") or config_blob.get("Config"))
    return ImageConfig(
        user=_text(config.get("User")),
        exposed_ports=tuple(sorted(str(port) for port in _mapping(config.get("ExposedPorts")))),
        env=tuple(_env_var(item) for item in _strings(config.get("Env"))),
        entrypoint=_optional_strings(config.get("Entrypoint")),
        cmd=_optional_strings(config.get("Cmd")),
        working_dir=_text(config.get("WorkingDir")),
        healthcheck=_healthcheck(config.get("Healthcheck")),
        labels={str(key): _text(value) for key, value in _mapping(config.get("Labels")).items()},
        volumes=tuple(sorted(str(volume) for volume in _mapping(config.get("Volumes")))),
        stop_signal=_text(config.get("StopSignal")),
        on_build=_strings(config.get("OnBuild")),
        shell=_optional_strings(config.get("Shell")),
    )


def env_pairs(config_blob: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The config's Env as (name, value) pairs, unredacted (for the secret scanner only)."""
    config = _mapping(config_blob.get("config") or config_blob.get("Config"))
    pairs = []
    for item in _strings(config.get("Env")):
        name, _, value = item.partition("=")
        pairs.append((name, value))
    return pairs


def history_entries(
    config_blob: Mapping[str, Any], layer_count: int
) -> tuple[tuple[HistoryEntry, ...], str | None]:
    """The history, each non-empty entry mapped in order to the layer it made.

    Returns the entries and a warning when the non-empty entries do not match `layer_count`
    (then the entries beyond the last layer get no layer index), else None.
    """
    raw = _history(config_blob)
    indexes = history_layer_indexes(raw, layer_count)
    entries = tuple(
        HistoryEntry(
            created=_text(item.get("created")),
            created_by=_text(item.get("created_by")),
            comment=_text(item.get("comment")),
            empty_layer=bool(item.get("empty_layer")),
            layer_index=index,
        )
        for item, index in zip(raw, indexes, strict=True)
    )
    made = sum(1 for item in raw if not item.get("empty_layer"))
    warning = None
    if raw and made != layer_count:
        warning = (
            f"image history records {made} layer-making step(s) but the image has {layer_count} layer(s);"
            " layers are matched to history entries in order"
        )
    return entries, warning


def history_layer_indexes(
    history: Sequence[Mapping[str, Any]], layer_count: int | None = None
) -> list[int | None]:
    """For each history entry, the index of the layer it made (None for empty-layer steps)."""
    indexes: list[int | None] = []
    next_layer = 0
    for item in history:
        if item.get("empty_layer") or (layer_count is not None and next_layer >= layer_count):
            indexes.append(None)
        else:
            indexes.append(next_layer)
            next_layer += 1
    return indexes


def secrets_in_config(scanner: SecretScanner, config_blob: Mapping[str, Any]) -> list[SecretFinding]:
    """Secrets in the image config blob: Env values and names, history `created_by`, labels.

    A history finding carries the layer its step made; the index in its path counts every entry,
    even one that is not a mapping, so it points at the blob's own list.
    """
    findings: list[SecretFinding] = []
    inner = _mapping(config_blob.get("config") or config_blob.get("Config"))
    env = inner.get("Env")
    for item in env if isinstance(env, list) else []:
        if not isinstance(item, str):
            continue
        name, _, value = item.partition("=")
        findings.extend(scanner.scan_assignment("env", f"ENV:{name}", None, name, value, item))
    for key, value in _mapping(inner.get("Labels")).items():
        text = value if isinstance(value, str) else ""
        findings.extend(scanner.scan_assignment("label", f"label:{key}", None, str(key), text, f"{key}={text}"))
    history = config_blob.get("history")
    entries = [(index, item) for index, item in enumerate(history if isinstance(history, list) else [])]
    entries = [(index, item) for index, item in entries if isinstance(item, Mapping)]
    layers = history_layer_indexes([item for _, item in entries])
    for (index, entry), layer_index in zip(entries, layers, strict=True):
        created_by = entry.get("created_by")
        if isinstance(created_by, str) and created_by:
            findings.extend(scanner.scan_history(index, layer_index, created_by))
    return findings


def platform_of(config_blob: Mapping[str, Any]) -> str:
    """`os/architecture[/variant]` from the config blob, e.g. linux/arm64/v8; missing parts are `unknown`."""
    system = _text(config_blob.get("os")) or "unknown"
    architecture = _text(config_blob.get("architecture")) or "unknown"
    variant = _text(config_blob.get("variant"))
    return f"{system}/{architecture}/{variant}" if variant else f"{system}/{architecture}"


def _history(config_blob: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    history = config_blob.get("history")
    if not isinstance(history, list):
        return []
    return [item for item in history if isinstance(item, Mapping)]


def _env_var(item: str) -> EnvVar:
    name, _, value = item.partition("=")
    if value and is_secret_name(name):
        return EnvVar(name=name, value=REDACTED, redacted=True)
    return EnvVar(name=name, value=value)


def _healthcheck(value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(key): (list(item) if isinstance(item, list) else item) for key, item in value.items()}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        return ()
    return tuple(_text(item) for item in value if item is not None)


def _optional_strings(value: Any) -> tuple[str, ...] | None:
    if value is None or (not isinstance(value, (list, str))):
        return None
    return _strings(value)
