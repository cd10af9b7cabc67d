"""Secret search: the secret rules applied to file contents, config strings and build files.

Semantics follow Anchore's `secret_search` analyzer (anchore-engine's
anchore_engine/analyzers/modules/*secret_content_search.py): regular files up to `max_file_size`
bytes, each line (split on `\\n`) tested with `re.match` on bytes, so a rule's `NAME=REGEX` text is
exactly what Anchore's `secret_scans` trigger messages carry. What differs is speed: one
Aho-Corasick pass over every rule's keywords searches the lower-cased file once, and only the
lines holding a rule's keyword are matched against that rule, so the thousands of files without a
candidate cost one pass each; Anchore's quadratic regexes are decided by linear equivalents
(ci_gate.secrets.rules). The rules are in ci_gate.secrets.rules; the rules file is read by the
analyze stage (ci_gate.analyze.secret_settings), which also walks the image config blob
(`ci_gate.analyze.image_config.secrets_in_config`, with `scan_assignment` and `scan_history`).

A finding never keeps the secret: only a short preview (`ci_gate.secrets.masking.secret_preview`)
where the secret is replaced by `****`, and anything secret-looking before it on the line is
replaced the same way; nothing after the secret is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import ahocorasick_rs

from ci_gate.model import SecretFinding
from ci_gate.secrets.masking import ASSIGNMENT, MASK, is_reference, mask_spans, secret_preview, secret_spans, unquote
from ci_gate.secrets.names import SECRET_NAME_REGEX, is_secret_name
from ci_gate.secrets.rules import (
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_RULES,
    SECRET_ENV_NAME,
    SecretRule,
    SecretSettings,
    compile_bytes,
    compile_text,
    linear_equivalent,
)


class _CompiledRule:
    """One rule and its patterns, each compiled the first time it is used.

    An analysis reaches a rule's patterns only when one of its keywords occurs in a file or config
    string, so most of the ~90 patterns of the built-in rules are never compiled (compiling them all
    took a few milliseconds of every analysis's start-up, with nothing found). The results are the
    same: a pattern is the same whenever it is compiled.
    """

    def __init__(self, rule: SecretRule) -> None:
        self.rule = rule
        self.keywords: tuple[bytes, ...] = tuple(keyword.lower().encode("utf-8") for keyword in rule.keywords)

    @cached_property
    def match(self) -> re.Pattern[bytes]:
        """The rule's regex on bytes (Anchore's `re.match(regex.encode(), line)`)."""
        return compile_bytes(self.rule.regex, f"secret rule {self.rule.name} regex")

    @cached_property
    def search(self) -> re.Pattern[str]:
        """The same regex on text, for config values (also `re.match` per line)."""
        return compile_text(self.rule.regex, f"secret rule {self.rule.name} regex")

    @cached_property
    def secret(self) -> re.Pattern[str] | None:
        return compile_text(self.rule.secret, f"secret rule {self.rule.name} secret") if self.rule.secret else None

    @cached_property
    def paths(self) -> re.Pattern[str] | None:
        return compile_text(self.rule.paths, f"secret rule {self.rule.name} paths") if self.rule.paths else None

    @cached_property
    def linear(self) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[str], re.Pattern[str]] | None:
        """Separator and token regexes (bytes, then text) deciding the same match in linear time."""
        return linear_equivalent(self.rule)

    def compile_all(self) -> None:
        """Compile every pattern now: a pattern that does not compile raises `SecretRuleError` here."""
        _ = (self.match, self.search, self.secret, self.paths, self.linear)

    def matches(self, line: bytes) -> bool:
        """Whether `line` matches the rule, as `re.match(rule.regex.encode(), line)` decides."""
        if self.linear is None:
            return self.match.match(line) is not None
        separator = self.linear[0].search(line)
        return separator is not None and self.linear[1].search(line, separator.end()) is not None

    def matches_text(self, line: str) -> bool:
        """`matches` for text (config values and history)."""
        if self.linear is None:
            return self.search.match(line) is not None
        separator = self.linear[2].search(line)
        return separator is not None and self.linear[3].search(line, separator.end()) is not None


_BUILT_IN_RULES = frozenset(DEFAULT_RULES)
"""Rules known to compile (their tests compile every one): only these are compiled lazily."""


@dataclass
class SecretScanner:
    """Applies secret rules to file contents and to the image config. Safe to reuse across images."""

    rules: Sequence[SecretRule] = DEFAULT_RULES
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    """Files larger than this many bytes are not searched (Anchore's MAXFILESIZE)."""
    exclude_paths: Sequence[str] = ()
    _compiled: tuple[_CompiledRule, ...] = field(init=False, repr=False)
    _keywords: Any = field(init=False, repr=False)
    """An Aho-Corasick automaton over every rule's keywords (`_keyword_list`): one linear pass over a
    file names the keywords it holds. The Rust one (ahocorasick-rs, SIMD prefilters) takes a quarter of
    the time pyahocorasick took on the 1 GB benchmark image, where this pass over 85,000 small files
    was the largest single cost of the parser. None when no rule has keywords."""
    _text_keywords: Any = field(init=False, repr=False)
    """The same keywords for text (str) searches."""
    _keyword_list: tuple[bytes, ...] = field(init=False, repr=False)
    _unfiltered: bool = field(init=False, repr=False)
    _exclude: re.Pattern[str] | None = field(init=False, repr=False)
    _name_rule: SecretRule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        compiled = [_CompiledRule(rule) for rule in self.rules]
        for item in compiled:
            if item.rule not in _BUILT_IN_RULES:
                item.compile_all()  # a rule given by the user fails here, when the scanner is made
        self._compiled = tuple(compiled)
        # A keyword containing another is redundant for "is any present"; a rule is concerned by a
        # hit when one of its own keywords contains the keyword found.
        minimal = {k for item in compiled for k in item.keywords}
        minimal = {k for k in minimal if not any(other != k and other in k for other in minimal)}
        self._keywords = self._text_keywords = None
        self._keyword_list = tuple(sorted(minimal))
        if minimal:
            # Every occurrence (overlapping ones too: STANDARD match kind), so no keyword hides another.
            standard = ahocorasick_rs.MATCHKIND_STANDARD
            self._keywords = ahocorasick_rs.BytesAhoCorasick(list(self._keyword_list), matchkind=standard)
            # Text (config values, history) is searched with each keyword byte read as one character.
            self._text_keywords = ahocorasick_rs.AhoCorasick(
                [keyword.decode("latin-1") for keyword in self._keyword_list], matchkind=standard)
        self._rules_for_hit = {
            hit: frozenset(index for index, item in enumerate(compiled) if any(hit in k for k in item.keywords))
            for hit in minimal
        }
        self._unfiltered = any(not item.keywords for item in compiled)
        self._exclude = (
            re.compile("|".join(f"(?:{pattern})" for pattern in self.exclude_paths)) if self.exclude_paths else None
        )
        self._name_rule = SecretRule(
            SECRET_ENV_NAME,
            SECRET_NAME_REGEX,
            "A secret-looking variable name (ENV, ARG, build argument, label) with a value",
            "ci-gate",
        )

    @classmethod
    def from_settings(cls, settings: SecretSettings) -> SecretScanner:
        return cls(settings.rules, settings.max_file_size, settings.exclude_paths)

    def wants(self, path: str, size: int) -> bool:
        """Whether a regular file of `size` bytes at `path` should be read and given to `scan_file`."""
        if size <= 0 or size > self.max_file_size:
            return False
        return not (self._exclude is not None and self._exclude.search(path))

    def keywords_in(self, lowered: bytes) -> set[bytes]:
        """The keywords (of the minimal set) that occur in `lowered` content, which must be lower case."""
        if self._keywords is None:
            return set()
        matches = self._keywords.find_matches_as_indexes(lowered, overlapping=True)
        return {self._keyword_list[index] for index, _, _ in matches}

    def scan_file(self, path: str, layer_index: int, content: bytes) -> list[SecretFinding]:
        """The secrets in one file's content: one finding per rule and matching line (1-based).

        One secret gives one finding: when two rules point at the same spot of a line (Anchore's
        AWS_ACCESS_KEY and AWS_ACCESS_KEY_ID on `aws_access_key_id = AKIA...`), the earlier rule
        in the list keeps it, so Anchore's names win.
        """
        if not content:
            return []
        lowered = content.lower()
        hits = self.keywords_in(lowered)
        if not hits and not self._unfiltered:
            return []
        concerned: set[int] = set()
        for hit in hits:
            concerned.update(self._rules_for_hit.get(hit, ()))
        findings: list[SecretFinding] = []
        claimed: set[tuple[int, int]] = set()
        all_lines: list[bytes] | None = None
        for index, item in enumerate(self._compiled):
            if item.keywords and index not in concerned:
                continue
            if item.paths is not None and not item.paths.search(path):
                continue
            if item.keywords:
                candidates = _lines_with(content, lowered, item.keywords)
            else:
                if all_lines is None:
                    all_lines = content.split(b"\n")
                candidates = [(index + 1, line) for index, line in enumerate(all_lines)]
            for number, line in candidates:
                if not item.matches(line):
                    continue
                preview, offset = secret_preview(line.decode("utf-8", errors="replace"), item.secret, 0)
                if offset is not None:
                    if (number, offset) in claimed:
                        continue
                    claimed.add((number, offset))
                findings.append(
                    SecretFinding(
                        rule=item.rule.name,
                        where="file",
                        path=path,
                        line=number,
                        layer_index=layer_index,
                        preview=preview,
                        regex=item.rule.anchore_name,
                    )
                )
        findings.sort(key=lambda finding: finding.line or 0)  # stable: rule order within a line
        return findings

    def scan_dockerfile(self, path: str, text: str) -> list[SecretFinding]:
        """Secrets written into a build file (DISA guide 2.9): `where` is `dockerfile`, lines 1-based.

        The file rules apply line by line as for image files; ENV, ARG and LABEL lines also get
        the secret-name heuristic (`ENV DB_PASSWORD=...`, `ARG NPM_TOKEN=...` with a literal value).
        """
        findings = [
            replace(finding, where="dockerfile", layer_index=None)
            for finding in self.scan_file(path, 0, text.encode("utf-8", errors="replace"))
        ]
        reported = {finding.line for finding in findings}
        for number, line in enumerate(text.splitlines(), start=1):
            keyword = line.strip().split(None, 1)[0].upper() if line.strip() else ""
            if number in reported or keyword not in ("ENV", "ARG", "LABEL"):
                continue
            for match in ASSIGNMENT.finditer(line):
                name, value = match.group("name"), unquote(match.group("value"))
                if value.strip() and is_secret_name(name) and not is_reference(value):
                    finding = self._name_finding("dockerfile", path, None, name, value)
                    findings.append(replace(finding, line=number))
        findings.sort(key=lambda finding: finding.line or 0)
        return findings

    def redact(self, text: str) -> str:
        """`text` with every secret the rules or the name heuristic find cut to a few characters + `****`.

        For text the analysis keeps and reports may print (history `created_by`, Dockerfile lines,
        label values): the secret is reported once as a finding and never shown in full elsewhere.
        """
        if not text:
            return text
        lowered_text = text.lower()
        # URL user info, secret-named assignments, authorization headers: by shape, every rule set.
        spans: list[tuple[int, int]] = secret_spans(text, lowered_text)
        concerned: set[int] = set()
        if self._text_keywords is not None:
            for index, _, _ in self._text_keywords.find_matches_as_indexes(lowered_text, overlapping=True):
                concerned.update(self._rules_for_hit.get(self._keyword_list[index], ()))
        if not concerned and not self._unfiltered:
            return mask_spans(text, spans) if spans else text  # the common case: one automaton pass
        offset = 0
        for line in text.split("\n"):
            lowered = line.lower()
            for index, item in enumerate(self._compiled):
                if item.rule.paths or (item.keywords and index not in concerned):
                    continue
                if item.keywords and not any(keyword.decode("utf-8") in lowered for keyword in item.keywords):
                    continue
                if not item.matches_text(line):
                    continue
                position = 0
                while item.secret is not None and position <= len(line):
                    # Overlapping search: a key name can itself look like the start of a match.
                    match = item.secret.search(line, position)
                    if match is None:
                        break
                    start, end = match.span("secret") if "secret" in match.re.groupindex else match.span()
                    if end > start:
                        spans.append((offset + start, offset + end))
                    position = match.start() + 1
                if item.secret is None:
                    spans.append((offset + min(4, len(line)), offset + len(line)))  # no locator: keep the start
            offset += len(line) + 1
        return mask_spans(text, spans) if spans else text

    def scan_assignment(
        self, where: str, path: str, layer_index: int | None, name: str, value: str, text: str
    ) -> list[SecretFinding]:
        """Secrets in one `name=value` of a config (an Env item, a label): the rules on `text`, else
        the secret-name heuristic on `name` with a literal `value`."""
        findings = self._scan_text(where, path, layer_index, text)
        if not findings and value.strip() and is_secret_name(name) and not is_reference(value):
            findings.append(self._name_finding(where, path, layer_index, name, value))
        return findings

    def scan_history(self, index: int, layer_index: int | None, created_by: str) -> list[SecretFinding]:
        """Secrets in the build step `history[index]` (its `created_by`): the rules, else each
        `NAME=value` with a secret-looking name and a literal value."""
        path = f"history[{index}]"
        findings = self._scan_text("history", path, layer_index, created_by)
        if findings:
            return findings
        for match in ASSIGNMENT.finditer(created_by):
            name, value = match.group("name"), unquote(match.group("value"))
            if value.strip() and is_secret_name(name) and not is_reference(value):
                findings.append(self._name_finding("history", path, layer_index, name, value))
        return findings

    # --- helpers ---------------------------------------------------------------------------------

    def _scan_text(self, where: str, path: str, layer_index: int | None, text: str) -> list[SecretFinding]:
        findings = []
        claimed: set[tuple[int, int]] = set()
        lowered = text.lower()
        for item in self._compiled:
            if item.rule.paths:
                continue  # a file-specific rule (.netrc) means nothing in a config string
            if item.keywords and not any(keyword.decode("utf-8") in lowered for keyword in item.keywords):
                continue
            for number, line in enumerate(text.split("\n")):
                if item.matches_text(line):
                    preview, offset = secret_preview(line, item.secret, 0)
                    if offset is not None and (number, offset) in claimed:
                        break
                    if offset is not None:
                        claimed.add((number, offset))
                    findings.append(
                        SecretFinding(
                            rule=item.rule.name,
                            where=where,
                            path=path,
                            line=None,
                            layer_index=layer_index,
                            preview=preview,
                            regex=item.rule.anchore_name,
                        )
                    )
                    break
        return findings

    def _name_finding(self, where: str, path: str, layer_index: int | None, name: str, value: str) -> SecretFinding:
        return SecretFinding(
            rule=SECRET_ENV_NAME,
            where=where,
            path=path,
            line=None,
            layer_index=layer_index,
            preview=f"{name}={MASK}",
            regex=self._name_rule.anchore_name,
        )


def _lines_with(content: bytes, lowered: bytes, keywords: tuple[bytes, ...]) -> list[tuple[int, bytes]]:
    """The (1-based number, line) of each line of `content` holding one of `keywords`, in order."""
    starts: set[int] = set()
    for keyword in keywords:
        position = lowered.find(keyword)
        while position != -1:
            start = lowered.rfind(b"\n", 0, position) + 1
            starts.add(start)
            end = lowered.find(b"\n", position)
            if end == -1:
                break
            position = lowered.find(keyword, end)
    lines = []
    number, counted = 1, 0
    for start in sorted(starts):
        number += content.count(b"\n", counted, start)  # counted incrementally: linear overall
        counted = start
        end = content.find(b"\n", start)
        lines.append((number, content[start:] if end == -1 else content[start:end]))
    return lines
