"""Dockerfiles: parse the one the user built from (mode `actual`), or rebuild one from history (`guessed`).

Anchore's `dockerfile` gate matches its checks against "the line after the directive"
(anchore-engine's policy/gates/dockerfile.py) and its trigger ids hash that text, so an instruction's `value` is
exactly what Anchore's gate computes: physical lines stripped, the trailing escape character
removed, the pieces concatenated, comment lines dropped, no variable substituted. `expanded` adds
what the builder makes of it where the result is a fact about the image rather than a shell
command (FROM, USER, EXPOSE, WORKDIR, ENV, LABEL, STOPSIGNAL, VOLUME): variables substituted from
ARG defaults, build arguments and earlier ENVs. Heredoc bodies (which Anchore does not know) are
appended to the value after a newline.

Multi-stage builds: the image is the last stage, so `instructions` holds the last stage only, and
`base_image` follows `FROM x AS y` ... `FROM y` back to a real image reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_gate.errors import AnalysisError
from ci_gate.model import Dockerfile, DockerfileInstruction

INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
"""The keywords Anchore's `instruction` trigger accepts, which are Docker's."""

SUBSTITUTED = frozenset({"FROM", "USER", "EXPOSE", "WORKDIR", "ENV", "LABEL", "STOPSIGNAL", "VOLUME"})
"""Instructions whose `expanded` text has variables replaced (the builder expands them too)."""

_WORD = re.compile(r"[A-Za-z_-]*")
_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=(.*)")
_HEREDOC = re.compile(r"(?<!<)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})


@dataclass
class _Stage:
    name: str
    """The `AS name` of the stage, lower-cased, or empty."""
    base: str
    """The FROM image after substitution (may name an earlier stage)."""
    variables: dict[str, str] = field(default_factory=dict)
    """ENV and ARG values in scope, for substitution."""
    env: dict[str, str] = field(default_factory=dict)
    """ENV values alone: a later `FROM this-stage` inherits them, ARGs it does not."""


def parse_dockerfile(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Parse a Dockerfile into the final stage's instructions (mode `actual`).

    Raises AnalysisError, naming `path:line`, for an unknown instruction, an unterminated heredoc,
    an instruction other than ARG before the first FROM, a FROM without an image, or no FROM.
    """
    arguments = dict(build_args or {})
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    escape, index = _directives(lines, path)
    global_args: dict[str, str] = {}
    stages: list[_Stage] = []
    instructions: list[DockerfileInstruction] = []
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start = index + 1
        logical, index = _join_continuation(lines, index, escape)
        parts = logical.strip().split(None, 1)
        keyword = parts[0].upper()
        rest = parts[1].strip() if len(parts) > 1 else ""
        if keyword not in INSTRUCTIONS:
            raise AnalysisError(
                # Only the word's leading letters: the rest of a stray line may hold a secret.
                f"{path}:{start}: unknown instruction {_leading_word(parts[0])!r}; expected one of"
                f" {', '.join(sorted(INSTRUCTIONS))}"
            )
        if keyword in _HEREDOC_INSTRUCTIONS and not rest.startswith("["):
            rest, index = _read_heredocs(rest, lines, index, path, start)
        expanded = rest
        if keyword == "FROM":
            expanded = substitute(rest, global_args, escape)
            stages.append(_new_stage(expanded, path, start, stages))
        elif not stages:
            if keyword != "ARG":
                raise AnalysisError(f"{path}:{start}: {keyword} before the first FROM; only ARG may come first")
            _declare_args(rest, global_args, {}, arguments, escape)
            continue  # global ARGs belong to no stage
        else:
            stage = stages[-1]
            if keyword == "ARG":
                _declare_args(rest, stage.variables, global_args, arguments, escape)
            elif keyword in SUBSTITUTED:
                expanded = substitute(rest, stage.variables, escape)
                if keyword == "ENV":
                    for name, value in _env_assignments(expanded, escape):
                        stage.variables[name] = value
                        stage.env[name] = value
        instructions.append(DockerfileInstruction(keyword, rest, start, index, len(stages) - 1, expanded=expanded))
    if not stages:
        raise AnalysisError(f"{path}: no FROM instruction; a Dockerfile's first stage must start with FROM")
    final = len(stages) - 1
    return Dockerfile(
        mode="actual",
        path=path,
        instructions=tuple(item for item in instructions if item.stage == final),
        stage_count=len(stages),
        base_image=_resolve_base(stages),
    )


def _leading_word(text: str) -> str:
    match = _WORD.match(text)
    return match.group(0)[:40] if match else ""


def _directives(lines: list[str], path: str) -> tuple[str, int]:
    """The escape character and the index of the first line after the parser directives."""
    escape = "\\"
    seen: set[str] = set()
    for index, line in enumerate(lines):
        match = _DIRECTIVE.fullmatch(line.strip())
        if not match:
            return escape, index
        name, value = match.group(1).lower(), match.group(2).strip()
        if name in seen:
            raise AnalysisError(f"{path}:{index + 1}: parser directive {name} given twice; keep one")
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise AnalysisError(f"{path}:{index + 1}: escape directive must be \\ or ` (got {value[:10]!r})")
            escape = value
    return escape, len(lines)


def _join_continuation(lines: list[str], index: int, escape: str) -> tuple[str, int]:
    """One logical line starting at `index`, and the index after its last physical line.

    Joined the way Anchore's dockerfile gate joins them: each physical line stripped, the trailing
    escape character removed, the pieces concatenated; comment and empty lines inside are dropped
    (as BuildKit does too).
    """
    text = lines[index].strip()
    index += 1
    parts: list[str] = []
    while text.endswith(escape):
        parts.append(text[: -len(escape)])
        while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
            index += 1
        if index >= len(lines):
            return "".join(parts), index
        text = lines[index].strip()
        index += 1
    parts.append(text)
    return "".join(parts), index


def _read_heredocs(rest: str, lines: list[str], index: int, path: str, start: int) -> tuple[str, int]:
    """Append each heredoc's body (and terminator) named in `rest` to the value, consuming its lines."""
    value = rest
    for match in _HEREDOC.finditer(rest):
        strip_tabs, delimiter = match.group(1) == "-", match.group(3)
        body: list[str] = []
        while True:
            if index >= len(lines):
                raise AnalysisError(
                    f"{path}:{start}: heredoc <<{delimiter} is never terminated;"
                    f" end it with a line holding only {delimiter}"
                )
            line = lines[index]
            index += 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
            body.append(line)
        value += "\n" + "\n".join([*body, delimiter])
    return value, index


def _new_stage(rest: str, path: str, line: int, stages: list[_Stage]) -> _Stage:
    words = [word for word in rest.split() if not word.startswith("--")]
    if not words:
        raise AnalysisError(f"{path}:{line}: FROM needs an image, e.g. FROM debian:bookworm-slim")
    image = words[0]
    name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""
    parent = next((stage for stage in reversed(stages) if stage.name and stage.name == image.lower()), None)
    inherited = dict(parent.env) if parent is not None else {}
    return _Stage(name=name, base=image, variables=dict(inherited), env=dict(inherited))


def _resolve_base(stages: list[_Stage]) -> str:
    """The final stage's base image, following FROM <earlier stage> back to a real image."""
    position = len(stages) - 1
    base = stages[position].base
    while True:
        earlier = [i for i in range(position) if stages[i].name and stages[i].name == base.lower()]
        if not earlier:
            return base
        position = earlier[-1]
        base = stages[position].base


def _declare_args(
    rest: str, scope: dict[str, str], global_args: Mapping[str, str], build_args: Mapping[str, str], escape: str
) -> None:
    """Bring the ARGs of one ARG instruction into scope: build argument, else default, else global value."""
    for word in _words(rest, escape):
        name, has_default, default = word.partition("=")
        if name in build_args:
            scope[name] = build_args[name]
        elif has_default:
            scope[name] = _unquote(substitute(default, scope, escape), escape)
        elif name in global_args:
            scope[name] = global_args[name]


def _env_assignments(rest: str, escape: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of an ENV value: `A=1 B="x y"`, or the legacy `NAME the value`."""
    words = _words(rest, escape)
    if words and "=" not in words[0]:
        name, _, value = rest.partition(" ")
        return [(name, value.strip())]
    pairs = []
    for word in words:
        name, _, value = word.partition("=")
        pairs.append((name, _unquote(value, escape)))
    return pairs


def _pieces(text: str, escape: str) -> Iterator[tuple[str, str]]:
    """`text` as the builder reads a word list, piece by piece with what each piece is: `escaped` (an
    escape and the character after it, outside single quotes), `quote` (a quote that opens or closes
    a quoted run), `blank` (white space outside quotes) or `plain`."""
    quote = ""
    position = 0
    while position < len(text):
        char = text[position]
        if char == escape and quote != "'" and position + 1 < len(text):
            yield text[position : position + 2], "escaped"
            position += 2
            continue
        kind = "plain"
        if quote:
            if char == quote:
                quote, kind = "", "quote"
        elif char in "\"'":
            quote, kind = char, "quote"
        elif char.isspace():
            kind = "blank"
        yield char, kind
        position += 1


def _words(text: str, escape: str) -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes in the words."""
    words: list[str] = []
    current: list[str] = []
    for piece, kind in _pieces(text, escape):
        if kind != "blank":
            current.append(piece)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def _unquote(word: str, escape: str) -> str:
    """Remove quotes and escapes from one word as the builder does for ENV and ARG values."""
    return "".join(piece[1] if kind == "escaped" else piece
                   for piece, kind in _pieces(word, escape) if kind != "quote")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-+?])(?P<word>.*))?", re.DOTALL)


def substitute(text: str, variables: Mapping[str, str], escape: str = "\\") -> str:
    """Replace $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:+alt}, ${NAME+alt}.

    Unknown names become empty, as in the builder; single-quoted text and escaped `$` stay as written.
    """
    result: list[str] = []
    position = 0
    quote = ""
    while position < len(text):
        char = text[position]
        if char == escape and quote != "'" and position + 1 < len(text) and text[position + 1] == "$":
            result.append("$")
            position += 2
            continue
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        if char == "$" and quote != "'":
            expanded = _expand_at(text, position + 1, variables, escape)
            if expanded is not None:
                value, position = expanded
                result.append(value)
                continue
        result.append(char)
        position += 1
    return "".join(result)


def _expand_at(text: str, position: int, variables: Mapping[str, str], escape: str) -> tuple[str, int] | None:
    """The expansion of the variable reference after a `$` at `position`, and where it ends."""
    plain = _NAME.match(text, position)
    if plain:
        return variables.get(plain.group(0)) or "", plain.end()
    if not text.startswith("{", position):
        return None
    depth, cursor = 1, position + 1
    while cursor < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[cursor], 0)
        cursor += 1
    if depth:
        return None  # no closing brace: leave the text as written
    braced = _BRACED.fullmatch(text, position + 1, cursor - 1)
    if not braced:
        return None
    value = variables.get(braced.group("name"))
    operator, word = braced.group("operator") or "", braced.group("word") or ""
    is_set = value is not None and (bool(value) or not operator.startswith(":"))
    if operator.endswith("-"):
        return (value or "" if is_set else substitute(word, variables, escape)), cursor
    if operator.endswith("+"):
        return (substitute(word, variables, escape) if is_set else ""), cursor
    return value or "", cursor  # ${NAME} and ${NAME:?message}: the builder fails when unset


# --- guessing from history -----------------------------------------------------------------------

_NOP = re.compile(r"^/bin/(?:ba)?sh\s+-c\s+#\(nop\)\s*")
_SHELL = re.compile(r"^(?:/bin/(?:ba)?sh\s+-c|cmd\s+/S\s+/C)\s+")
_BUILD_ARGS = re.compile(r"^\|(?P<count>\d+)\s+")
_BUILDAH_OPTION = re.compile(r"(?:inheritLabels|unsetLabel|force-mtime)=[^|]*")
_EXPOSE_MAP = re.compile(r"^map\[(?P<ports>.*)\]$")
_COPIED_DIGEST = re.compile(r"^(?P<source>(?:--\S+\s+)*(?:file|dir|multi):[0-9a-f]+) in (?P<target>.*)$")
_GO_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def guess_dockerfile(history: Sequence[Mapping[str, Any]]) -> Dockerfile:
    """A Dockerfile rebuilt from the config's history (mode `guessed`); line = history index + 1.

    Understands the classic builder (`/bin/sh -c #(nop) ENV ...`, `/bin/sh -c apt-get ...`), BuildKit
    (`RUN /bin/sh -c ... # buildkit`, `ENV ...`, `EXPOSE map[8080/tcp:{}]`), Buildah/Podman suffixes,
    `|N NAME=value` build-argument prefixes and Go-formatted HEALTHCHECKs. Anything else is a RUN.
    """
    instructions = []
    for index, entry in enumerate(history):
        created_by = entry.get("created_by") if isinstance(entry, Mapping) else None
        if not isinstance(created_by, str) or not created_by.strip():
            continue
        keyword, value = instruction_from_history(created_by)
        # The builder already substituted variables before it wrote the history.
        instructions.append(DockerfileInstruction(keyword, value, index + 1, index + 1, 0, expanded=value))
    return Dockerfile(mode="guessed", instructions=tuple(instructions), stage_count=1)


def instruction_from_history(created_by: str) -> tuple[str, str]:
    """The (KEYWORD, value) of one history `created_by` text."""
    text = _strip_suffixes(created_by.strip())
    nop = _NOP.match(text)
    if nop:
        text = text[nop.end() :].strip()
        keyword, _, value = text.partition(" ")
        if keyword in INSTRUCTIONS:
            return keyword, _normalise(keyword, value.strip())
        return "RUN", text
    keyword, _, value = text.partition(" ")
    # BuildKit writes keywords in upper case; `cmd /S /C` (Windows) is a RUN, not CMD.
    if keyword in INSTRUCTIONS and keyword != "RUN":
        return keyword, _normalise(keyword, value.strip())
    if keyword == "RUN":
        text = value.strip()
    return "RUN", _run_command(text)


def _strip_suffixes(text: str) -> str:
    """Drop BuildKit's ` # buildkit` and Buildah's `|inheritLabels=false|...` (string ops: linear time)."""
    if text.endswith("# buildkit"):
        text = text.removesuffix("# buildkit").rstrip()
    while "|" in text:
        head, _, option = text.rpartition("|")
        if not _BUILDAH_OPTION.fullmatch(option.rstrip()):
            break
        text = head.rstrip()
    return text


def _run_command(text: str) -> str:
    """The command of a RUN step, without the `|N NAME=value` prefix and the `/bin/sh -c`."""
    arguments = _BUILD_ARGS.match(text)
    if arguments:
        remainder = text[arguments.end() :]
        shell = re.search(r"(?:^|\s)(/bin/(?:ba)?sh\s+-c\s)", remainder)
        if shell:
            text = remainder[shell.start(1) :]
        else:
            words = remainder.split(None, int(arguments.group("count")))
            text = words[-1] if len(words) > int(arguments.group("count")) else ""
    shell_prefix = _SHELL.match(text)
    return text[shell_prefix.end() :].strip() if shell_prefix else text.strip()


def _normalise(keyword: str, value: str) -> str:
    if keyword == "EXPOSE":
        ports = _EXPOSE_MAP.match(value)
        if ports:
            return " ".join(port.removesuffix(":{}") for port in ports.group("ports").split())
    elif keyword == "HEALTHCHECK" and value.startswith("&{"):
        return _healthcheck(value)
    elif keyword in ("ADD", "COPY"):
        copied = _COPIED_DIGEST.match(value)
        if copied:
            return f"{copied.group('source')} {copied.group('target').strip()}"
    return value


def _healthcheck(value: str) -> str:
    """HEALTHCHECK text from Go's `&{[test...] "interval" "timeout" "start" ... 'retries'}` form."""
    test_end = value.find("]")
    if not value.startswith("&{[") or test_end == -1:
        return value
    test = [_go_unquote(item) for item in _GO_STRING.findall(value[3:test_end])]
    if not test:
        return value
    if test[0] == "NONE":
        return "NONE"
    durations = _GO_STRING.findall(value[test_end + 1 :])
    flags = [
        f"--{flag}={duration}"
        for flag, duration in zip(("interval", "timeout", "start-period", "start-interval"), durations, strict=False)
        if duration not in ("0s", "")
    ]
    retries = re.search(r"'(\\x[0-9a-fA-F]{2}|\\[0-7]{3}|\\.|.)'\s*\}?$", value)
    if retries:
        count = _go_rune(retries.group(1))
        if count:
            flags.append(f"--retries={count}")
    if test[0] == "CMD-SHELL":
        command = "CMD " + " ".join(test[1:])
    elif test[0] == "CMD":
        command = "CMD " + json.dumps(test[1:])
    else:
        command = " ".join(test)
    return " ".join([*flags, command])


def _go_unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda match: {"n": "\n", "t": "\t"}.get(match.group(1), match.group(1)), text)


def _go_rune(text: str) -> int:
    if text.startswith("\\x"):
        return int(text[2:], 16)
    if len(text) == 4 and text.startswith("\\") and text[1:].isdigit():
        return int(text[1:], 8)
    if text.startswith("\\"):
        return {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}.get(text[1:], 0)
    return ord(text)
