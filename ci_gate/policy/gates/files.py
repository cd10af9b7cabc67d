"""files: file names, attributes, setuid/setgid bits and configured content searches."""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterator

from ci_gate.analyze.cache import stored_files_ending_with
from ci_gate.model import FileRecord
from ci_gate.policy.gates.interface import (
    EvaluationContext,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerInput,
    TriggerSpec,
)

_TYPE_BITS = {
    "file": 0o100000,
    "hardlink": 0o100000,
    "symlink": 0o120000,
    "dir": 0o040000,
    "block": 0o060000,
    "char": 0o020000,
    "fifo": 0o010000,
}
"""anchore-engine stores st_mode with the file-type bits; its messages print them (oct(0o104755))."""


def full_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path.lstrip("./")


def anchore_mode(record: FileRecord) -> int:
    return _TYPE_BITS.get(record.kind, 0) | record.mode


def _files_by_path(context: EvaluationContext) -> dict[str, FileRecord]:
    return context.memo("files.by_path", lambda: {full_path(f.path): f for f in context.analysis.files})


def records_at(context: EvaluationContext, paths: Collection[str]) -> tuple[FileRecord, ...]:
    """The records at these absolute paths, in filesystem order. A cached analysis finds them in its
    stored table without loading it (`ci_gate.analyze.cache`): a rule that looks up a few paths must not
    pay for the 100,000 records of a large image."""
    wanted = frozenset(paths)
    # A path p with full_path(p) == "/a/b" ends with "a/b", whichever way it was stored.
    found = stored_files_ending_with(context.analysis, sorted(path.lstrip("/") for path in wanted))
    return tuple(f for f in (context.analysis.files if found is None else found) if full_path(f.path) in wanted)


def _content_regex_match(call: TriggerInput) -> Iterator[Fired]:
    wanted = call.params.get("regex_name")
    seen: set[tuple[str, str]] = set()
    for match in call.context.analysis.content_matches:
        name, _, regex = match.name.partition("=")
        if wanted and wanted not in (match.name, name, regex):
            continue
        path = full_path(match.path)
        if (path, match.name) in seen:
            continue
        seen.add((path, match.name))
        yield Fired(
            message=f"File content analyzer found regexp match in container: file={path} regexp={match.name}",
            path=path,
            layer_index=match.layer_index,
        )


_METACHARACTERS = set(".^$*+?{}[]\\|()")


def literal_prefix(pattern: str) -> str:
    """The literal text every `re.match` of `pattern` must start with ("" when unsure)."""
    if "|" in pattern or pattern.startswith("(?"):
        return ""
    prefix: list[str] = []
    for index, character in enumerate(pattern):
        if character in _METACHARACTERS:
            if character in "*?{" and prefix:
                prefix.pop()  # the previous character is optional or repeated
            break
        prefix.append(character)
        if index + 1 < len(pattern) and pattern[index + 1] in "*?{":
            prefix.pop()
            break
    return "".join(prefix)


def _sorted_paths(context: EvaluationContext) -> list[str]:
    return context.memo("files.sorted_paths", lambda: sorted(_files_by_path(context)))


def _name_match(call: TriggerInput) -> Iterator[Fired]:
    regex = call.params["regex"]
    match = re.compile(regex).match
    paths = _sorted_paths(call.context)
    prefix = literal_prefix(regex)
    if prefix:
        # re.match is anchored: only paths starting with the literal prefix can match.
        start = bisect.bisect_left(paths, prefix)
        end = bisect.bisect_left(paths, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        candidates = paths[start:end]
    else:
        candidates = list(_files_by_path(call.context))
    records = _files_by_path(call.context)
    order = [path for path in candidates if match(path)]
    if prefix:
        # Report in filesystem order, as the full scan does.
        position = _positions(call.context)
        order.sort(key=position.__getitem__)
    for path in order:
        yield Fired(
            message=f"Application of regex matched file found in container: file={path} regexp={regex}",
            path=path,
            layer_index=records[path].layer_index,
        )


def _positions(context: EvaluationContext) -> dict[str, int]:
    return context.memo("files.positions", lambda: {p: i for i, p in enumerate(_files_by_path(context))})


def _attribute_match(call: TriggerInput) -> Iterator[Fired]:
    filename = call.params["filename"]
    checksum = call.params.get("checksum")
    mode = call.params.get("mode")
    mode_op = call.params.get("mode_op", "equals")
    skip_missing = call.params.get("skip_missing", True)
    at_filename = records_at(call.context, (filename,))
    record = at_filename[-1] if at_filename else None  # the last entry for a path is the one the image has
    parts: list[str] = []
    if record is not None:
        if checksum:
            # The analysis records no file digests: a checksum condition cannot hold, so no fire
            # (the rule is listed in the evaluation warnings by the engine).
            return
        if mode:
            file_mode = oct(record.mode & 0o7777)
            wanted = oct(int(mode, 8))
            if (mode_op == "equals") == (file_mode == wanted):
                parts.append(f"mode={file_mode} op={mode_op} specified_mode={wanted}")
            else:
                return
    else:
        if skip_missing:
            return
        parts.append("skip_missing=False")
    if parts:
        message = f"filename={filename}" + "".join(f" and {part}" for part in parts)
        yield Fired(message=message, path=filename, layer_index=record.layer_index if record else None)


def _suid(call: TriggerInput) -> Iterator[Fired]:
    for path, record in _files_by_path(call.context).items():
        if record.mode & 0o6000:
            yield Fired(
                message=f"SUID or SGID found set on file {path}. Mode: {oct(anchore_mode(record))}",
                path=path,
                layer_index=record.layer_index,
            )


def _mode_valid(raw: str) -> bool:
    try:
        int(raw, 8)
    except ValueError:
        return False
    return True


GATE = GateSpec(
    name="files",
    description="Checks against files in the analyzed image including file content, file names, and "
    "filesystem attributes.",
    triggers=(
        TriggerSpec(
            name="content_regex_match",
            description="Triggers for each file where the content search analyzer has found a match using "
            'configured regexes in the analyzer configuration "content_search" section. If the parameter '
            "is set, the trigger will only fire for files that matched the named regex.",
            evaluate=_content_regex_match,
            parameters=(
                ParameterSpec(
                    "regex_name",
                    "string",
                    "Regex string that also appears in the content search "
                    "configuration, to limit the check to. If set, will only fire trigger when the "
                    "specific named regex was found in a file.",
                    example=".*password.*",
                ),
            ),
        ),
        TriggerSpec(
            name="name_match",
            description="Triggers if a file exists in the container that has a filename that matches the "
            "provided regex.",
            evaluate=_name_match,
            parameters=(
                ParameterSpec(
                    "regex",
                    "string",
                    "Regex to apply to file names for match (Python re.match on the full path).",
                    required=True,
                    example=r".*\.pem",
                    is_regex=True,
                ),
            ),
        ),
        TriggerSpec(
            name="attribute_match",
            description="Triggers if a filename exists in the container that has attributes that match "
            "those which are provided. ci-gate records no file digests: checksum conditions never fire.",
            evaluate=_attribute_match,
            parameters=(
                ParameterSpec(
                    "filename",
                    "string",
                    "Filename to check against provided checksum.",
                    required=True,
                    example="/etc/passwd",
                ),
                ParameterSpec(
                    "checksum_algorithm",
                    "EnumString",
                    "Checksum algorithm",
                    allowed_values=("sha256",),
                    example="sha256",
                    default="sha256",
                ),
                ParameterSpec(
                    "checksum",
                    "string",
                    "Checksum of file.",
                    example="832cd0f75b227d13aac82b1f70b7f90191a4186c151f9db50851d209c45ede11",
                ),
                ParameterSpec(
                    "checksum_match",
                    "EnumString",
                    "Checksum operation to perform.",
                    allowed_values=("equals", "not_equals"),
                    example="equals",
                    default="equals",
                ),
                ParameterSpec("mode", "string", "File mode of file (octal).", example="00644"),
                ParameterSpec(
                    "mode_op",
                    "EnumString",
                    "File mode operation to perform.",
                    allowed_values=("equals", "not_equals"),
                    example="equals",
                    default="equals",
                ),
                ParameterSpec(
                    "skip_missing",
                    "BooleanString",
                    "If set to true, do not fire this trigger if "
                    "the file is not present. If set to false, fire this trigger ignoring the other "
                    "parameter settings.",
                    example="true",
                    default="true",
                ),
            ),
            cross_check=lambda raw: (
                [f"'mode' must be an octal number like 00644; got {raw['mode']!r}"]
                if "mode" in raw and not _mode_valid(raw["mode"])
                else []
            ),
        ),
        TriggerSpec(
            name="suid_or_guid_set",
            description="Fires for each file found to have suid or sgid bit set.",
            evaluate=_suid,
        ),
    ),
)
