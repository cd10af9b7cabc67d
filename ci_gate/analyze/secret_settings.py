"""The secret rules file (`--secret-rules FILE`): which rules apply, and to which files.

Rules file (YAML, `--secret-rules FILE`)::

    max_file_size: 10000          # bytes; larger files are not searched (Anchore's MAXFILESIZE)
    include_defaults: true        # start from the built-in rules (default true)
    disable: [JWT]                # built-in rule names to turn off
    exclude_paths: ['^/usr/share/doc/']   # regexes (re.search) on the path; matching files are skipped
    rules:                        # added rules (a name already present replaces that rule)
      - name: ACME_TOKEN
        regex: '.*acme_[a-z0-9]{32}'       # re.match per line, like Anchore (start with .* to search)
        description: ACME deploy token
        keywords: [acme_]         # optional: substrings every match contains (makes the rule cheap)
        paths: '(^|/)\\.acmerc$'  # optional: regex (re.search) a file path must match
        secret: 'acme_(?P<secret>[a-z0-9]+)'  # optional: where the secret is, for the redacted preview
    regexp_match:                 # Anchore analyzer_config.yaml entries are accepted as they are
      - "MY_RULE=(?i).*my_password *= *.+"

The rules and the scanner are ci_gate.secrets; this module reads the file and reports what is
wrong in it as an `AnalysisError` naming the file and line.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from ci_gate.errors import AnalysisError
from ci_gate.secrets.rules import (
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_RULES,
    SecretRule,
    SecretRuleError,
    SecretSettings,
    compile_bytes,
    compile_text,
)


def load_secret_rules(path: Path | None = None) -> list[SecretRule]:
    """The rules to apply: the defaults, or the defaults adjusted by the rules file at `path`."""
    return list(load_secret_settings(path).rules)


def load_secret_settings(path: Path | None = None) -> SecretSettings:
    """Rules, max file size and excluded paths from a rules file (module docstring), or the defaults."""
    if path is None:
        return SecretSettings()
    # Imported only when a rules file is read: YAML costs ~20 ms of every analysis's start-up otherwise.
    import yaml

    from ci_gate.bounded_yaml import YamlLimitError, check_shape

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read secret rules file {path}: {error}; give a readable YAML file") from None
    try:
        check_shape(text, f"secret rules file {path}", 4 * 1024 * 1024)
        document = yaml.load(text, Loader=_line_loader())  # a SafeLoader subclass
    except YamlLimitError as error:
        raise AnalysisError(str(error)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise AnalysisError(f"{where}: secret rules file is not valid YAML ({problem})") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise AnalysisError(f"{path}:1: secret rules file must be a mapping (max_file_size, disable, rules)")
    try:
        return _settings_from(document, str(path))
    except SecretRuleError as error:  # a pattern that does not compile; the message names file and line
        raise AnalysisError(str(error)) from None


@cache
def _line_loader() -> type[Any]:
    """A safe loader that records the line of each mapping under the key `__line__` (made on first use,
    with the YAML import)."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        pass

    def construct_mapping_with_line(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        mapping = loader.construct_mapping(node, deep=True)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping_with_line)
    return LineLoader

_SETTINGS_KEYS = {"max_file_size", "include_defaults", "disable", "exclude_paths", "rules", "regexp_match"}
_RULE_KEYS = {"name", "regex", "description", "keywords", "paths", "secret"}


def _settings_from(document: dict[str, Any], path: str) -> SecretSettings:
    line = document.pop("__line__", 1)
    unknown = sorted(str(key) for key in document if key not in _SETTINGS_KEYS)
    if unknown:
        raise AnalysisError(
            f"{path}:{line}: unknown key(s) {', '.join(unknown)} in secret rules file;"
            f" allowed: {', '.join(sorted(_SETTINGS_KEYS))}"
        )
    max_file_size = document.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    if isinstance(max_file_size, bool) or not isinstance(max_file_size, int) or max_file_size <= 0:
        raise AnalysisError(f"{path}:{line}: max_file_size must be a positive number of bytes")
    include_defaults = document.get("include_defaults", True)
    if not isinstance(include_defaults, bool):
        raise AnalysisError(f"{path}:{line}: include_defaults must be true or false")
    rules: dict[str, SecretRule] = {rule.name: rule for rule in DEFAULT_RULES} if include_defaults else {}
    for name in _string_list(document.get("disable", []), "disable", path, line):
        if name not in rules:
            raise AnalysisError(
                f"{path}:{line}: disable names unknown rule {name!r}; known: {', '.join(sorted(rules))}"
            )
        del rules[name]
    exclude_paths = _string_list(document.get("exclude_paths", []), "exclude_paths", path, line)
    for pattern in exclude_paths:
        compile_text(pattern, f"{path}:{line}: exclude_paths entry")
    entries = document.get("rules", []) or []
    if not isinstance(entries, list):
        raise AnalysisError(f"{path}:{line}: rules must be a list of mappings with name and regex")
    for entry in entries:
        rule = _rule_from(entry, path, line)
        rules[rule.name] = rule
    for text in _string_list(document.get("regexp_match", []), "regexp_match", path, line):
        name, separator, regex = text.partition("=")
        if not separator or not name or not regex:
            raise AnalysisError(f"{path}:{line}: regexp_match entry must be NAME=REGEX")
        rule = SecretRule(name.strip(), regex, "", path)
        _check_rule(rule, f"{path}:{line}")
        rules[rule.name] = rule
    return SecretSettings(tuple(rules.values()), max_file_size, tuple(exclude_paths))


def _rule_from(entry: Any, path: str, parent_line: int) -> SecretRule:
    if not isinstance(entry, dict):
        raise AnalysisError(f"{path}:{parent_line}: each entry of rules must be a mapping with name and regex")
    line = entry.pop("__line__", parent_line)
    where = f"{path}:{line}"
    unknown = sorted(str(key) for key in entry if key not in _RULE_KEYS)
    if unknown:
        raise AnalysisError(
            f"{where}: unknown key(s) {', '.join(unknown)} in rule; allowed: {', '.join(sorted(_RULE_KEYS))}"
        )
    name, regex = entry.get("name"), entry.get("regex")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise AnalysisError(f"{where}: rule needs a name of letters, digits, _ . - (got {name!r})")
    if not isinstance(regex, str) or not regex:
        raise AnalysisError(f"{where}: rule {name} needs a regex")
    keywords = tuple(keyword.lower() for keyword in _string_list(entry.get("keywords", []), "keywords", path, line))
    if any(not keyword for keyword in keywords):
        raise AnalysisError(f"{where}: rule {name} has an empty keyword")
    description, paths, secret = entry.get("description", ""), entry.get("paths", ""), entry.get("secret", "")
    for key, value in (("description", description), ("paths", paths), ("secret", secret)):
        if not isinstance(value, str):
            raise AnalysisError(f"{where}: rule {name}: {key} must be a string")
    rule = SecretRule(name, regex, description, path, keywords, paths, secret)
    _check_rule(rule, where)
    return rule


def _check_rule(rule: SecretRule, where: str) -> None:
    compile_bytes(rule.regex, f"{where}: rule {rule.name} regex")
    if rule.paths:
        compile_text(rule.paths, f"{where}: rule {rule.name} paths")
    if rule.secret:
        compile_text(rule.secret, f"{where}: rule {rule.name} secret")


def _string_list(value: Any, key: str, path: str, line: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AnalysisError(f"{path}:{line}: {key} must be a list of strings")
    return list(value)
