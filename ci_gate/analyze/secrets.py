"""Secret search: Anchore's five default regexes plus a well-chosen set, over files and image config.

Semantics follow Anchore's `secret_search` analyzer (reference/anchore.md §4.3): regular files up to
`max_file_size` bytes, each line (split on `\\n`) tested with `re.match` on bytes, so a rule's
`NAME=REGEX` text is exactly what Anchore's `secret_scans` trigger messages carry. What differs is
speed: one trie-shaped regex over every rule's keywords searches the lower-cased file once, and
only the lines holding a rule's keyword are matched against that rule, so the thousands of files
without a candidate cost one search each; Anchore's quadratic regexes are decided by linear
equivalents (see _LINEAR_EQUIVALENTS). docs/secret-rules.md describes the rules for users.

A finding never keeps the secret: only a short preview where the secret is replaced by `****`, and
anything secret-looking before it on the line is replaced the same way; nothing after the secret is
kept.

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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from ci_gate.analyze.image_config import history_layer_indexes
from ci_gate.analyze.secret_names import SECRET_NAME_REGEX, is_secret_name
from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.errors import AnalysisError
from ci_gate.model import SecretFinding
from ci_gate.redaction import ASSIGNMENT as _ASSIGNMENT
from ci_gate.redaction import MASK, mask_spans, secret_spans
from ci_gate.redaction import is_reference as _is_reference
from ci_gate.redaction import unquote as _unquote

DEFAULT_MAX_FILE_SIZE = 10000
"""Anchore's default MAXFILESIZE for secret_search, in bytes."""

SECRET_ENV_NAME = "SECRET_ENV_NAME"
"""The rule that fires on a secret-looking variable name with a value (ENV, ARG, build args, labels)."""

def _mask(secret: str) -> str:
    """A secret in a preview is `****`: no character of it, as the gate's reports show it."""
    return MASK


def _mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Spans of a preview masked whole (`redact` keeps ci_gate.redaction's masking for other text)."""
    return mask_spans(text, spans, keep=0)


_PREVIEW_PREFIX_LIMIT = 48
"""How many characters before the secret a preview keeps (the variable name and the `=`)."""


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One named secret pattern."""

    name: str
    """Upper-case rule name, e.g. AWS_ACCESS_KEY; Anchore's names for Anchore's defaults."""
    regex: str
    """The pattern, applied with `re.match` to each line (as bytes), exactly as Anchore does."""
    description: str = ""
    """What the rule finds, for reports and `--help` output."""
    source: str = "ci-gate"
    """Where the rule comes from: `anchore` (the five defaults), `ci-gate` (built in) or the rules file."""
    keywords: tuple[str, ...] = ()
    """Lower-case substrings of which every match contains at least one; empty = test every line."""
    paths: str = ""
    """A regex (re.search) a file path must match for the rule to apply; empty = every file."""
    secret: str = ""
    """A regex (re.search on the matched line) whose `secret` group (else whole match) is the secret."""

    @property
    def anchore_name(self) -> str:
        """`NAME=REGEX`, the form Anchore's analyzer config and trigger messages use."""
        return f"{self.name}={self.regex}"


def _rule(
    name: str, regex: str, description: str, keywords: Iterable[str], secret: str = "", paths: str = ""
) -> SecretRule:
    return SecretRule(name, regex, description, "ci-gate", tuple(keywords), paths, secret)


ANCHORE_DEFAULT_RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "AWS_ACCESS_KEY",
        r"(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
        "AWS access key id assigned to aws_access_key_id",
        "anchore",
        ("aws_access_key_id",),
        "",
        r"(?i)aws_access_key_id *=+ *.*?(?<![A-Z0-9])(?P<secret>[A-Z0-9]{20})(?![A-Z0-9])",
    ),
    SecretRule(
        "AWS_SECRET_KEY",
        r"(?i).*aws_secret_access_key( *=+ *).*(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]).*",
        "AWS secret access key assigned to aws_secret_access_key",
        "anchore",
        ("aws_secret_access_key",),
        "",
        r"(?i)aws_secret_access_key *=+ *.*?(?<![A-Za-z0-9/+=])(?P<secret>[A-Za-z0-9/+=]{40})"
        r"(?![A-Za-z0-9/+=])",
    ),
    SecretRule(
        "PRIV_KEY",
        r"(?i)-+BEGIN(.*)PRIVATE KEY-+",
        "PEM private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS#8) at the start of a line",
        "anchore",
        ("private key",),
        "",
        r"(?i)-+BEGIN.*?PRIVATE KEY-+(?P<secret>.*)",
    ),
    SecretRule(
        "DOCKER_AUTH",
        r'(?i).*"auth": *".+"',
        "Registry credentials in a Docker config.json `auths` entry",
        "anchore",
        ('"auth":',),
        "",
        r'(?i)"auth": *"(?P<secret>[^"]+)',
    ),
    SecretRule(
        "API_KEY",
        r"(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*",
        "A 20 to 60 character token assigned to an api_key / api-key",
        "anchore",
        ("api_key", "api-key"),
        "",
        r"(?i)api[-_]key *=+ *.*?(?<![A-Z0-9])(?P<secret>[A-Z0-9]{20,60})(?![A-Z0-9])",
    ),
)
"""Anchore's `secret_search` defaults (anchore_engine/conf/analyzer_config.yaml), names and regexes exact."""

_LINEAR_EQUIVALENTS: dict[str, tuple[str, str]] = {
    "AWS_ACCESS_KEY": (r"(?i)aws_access_key_id *=+ *", r"(?i)(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9])"),
    "AWS_SECRET_KEY": (
        r"(?i)aws_secret_access_key *=+ *",
        r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
    ),
    "API_KEY": (r"(?i)api(-|_)key *=+ *", r"(?i)(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9])"),
}
"""For Anchore's `.*KEY( *=+ *).*TOKEN.*` rules: (separator, token) regexes that decide the same match.

`re.match` of the original backtracks through every `.*` split, quadratic in the line length: a
hostile 10 kB line of repeated `api_key=` takes a second. A line matches the original exactly when
the token regex finds a token after the end of the first separator match (a token cannot start
inside a separator: lookbehind forbids a preceding `=`, and blanks are not token characters), and
two `search`es decide that in linear time. Used only while the rule's regex is Anchore's own text.
"""

_VALUE = r"[\"']?(?P<secret>(?!\$\{?[A-Za-z_])[^\s\"']+)"
"""A configuration value that is not a `$VAR` / `${VAR}` reference."""

EXTRA_RULES: tuple[SecretRule, ...] = (
    _rule(
        "PGP_PRIVATE_KEY",
        r".*-----BEGIN PGP PRIVATE KEY BLOCK-----",
        "ASCII-armoured OpenPGP private key block",
        ["begin pgp private key block"],
        r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?P<secret>.*)",
    ),
    _rule(
        "PUTTY_PRIVATE_KEY",
        r"PuTTY-User-Key-File-[0-9]+: *\S+",
        "PuTTY private key file (.ppk)",
        ["putty-user-key-file-"],
        r"PuTTY-User-Key-File-[0-9]+: *(?P<secret>)",
    ),
    _rule(
        "PRIVATE_KEY_IN_VALUE",
        r".+-----BEGIN [A-Z ]*PRIVATE KEY-----",
        "PEM private key embedded in a line (JSON string, YAML value, echo), not at the line start",
        ["private key"],
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?P<secret>.*)",
    ),
    _rule(
        "GCP_SERVICE_ACCOUNT_KEY",
        r'.*"private_key" *: *"-----BEGIN',
        "Google Cloud service-account JSON key (private_key field)",
        ['"private_key"'],
        r'"private_key" *: *"(?P<secret>.*)',
    ),
    _rule(
        "GITHUB_TOKEN",
        r".*?(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])",
        "GitHub personal access, OAuth, app or refresh token (ghp_, gho_, ghu_, ghs_, ghr_)",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36,255})",
    ),
    _rule(
        "GITHUB_FINE_GRAINED_TOKEN",
        r".*?(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9_])",
        "GitHub fine-grained personal access token (github_pat_)",
        ["github_pat_"],
        r"(?P<secret>github_pat_[A-Za-z0-9_]+)",
    ),
    _rule(
        "GITLAB_TOKEN",
        r".*?(?<![A-Za-z0-9_])gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_\-]{20,}",
        "GitLab personal, deploy, runner, trigger or CI job token (glpat-, gldt-, glrt-, glptt-, glcbt-)",
        ["glpat-", "gldt-", "glrt-", "glptt-", "glcbt-"],
        r"(?P<secret>gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_\-]+)",
    ),
    _rule(
        "SLACK_TOKEN",
        r".*?(?<![A-Za-z0-9])xox[abposr]-[0-9A-Za-z]+-[0-9A-Za-z\-]{8,}",
        "Slack bot, user, app or refresh token (xoxb-, xoxp-, xoxa-, xoxr-, ...)",
        ["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"],
        r"(?P<secret>xox[abposr]-[0-9A-Za-z\-]+)",
    ),
    _rule(
        "SLACK_WEBHOOK",
        r".*https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{16,}",
        "Slack incoming-webhook URL",
        ["hooks.slack.com/services/"],
        r"https://hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9_/]+)",
    ),
    _rule(
        "GOOGLE_API_KEY",
        r".*?(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])",
        "Google API key (AIza...)",
        ["aiza"],
        r"(?P<secret>AIza[0-9A-Za-z_\-]{35})",
    ),
    _rule(
        "STRIPE_SECRET_KEY",
        r".*?(?<![A-Za-z0-9_])[sr]k_live_[0-9A-Za-z]{24,99}(?![A-Za-z0-9])",
        "Stripe live secret or restricted key (sk_live_, rk_live_)",
        ["sk_live_", "rk_live_"],
        r"(?P<secret>[sr]k_live_[0-9A-Za-z]+)",
    ),
    _rule(
        "AWS_ACCESS_KEY_ID",
        r".*?(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])",
        "AWS long-term access key id (AKIA...), anywhere on a line",
        ["akia"],
        r"(?P<secret>AKIA[0-9A-Z]{16})",
    ),
    _rule(
        "AWS_SESSION_TOKEN",
        r"(?i).*aws_session_token *[=:] *[\"']?[A-Za-z0-9/+=]{16,}",
        "AWS session token in a credentials file or environment line",
        ["aws_session_token"],
        r"(?i)aws_session_token *[=:] *[\"']?(?P<secret>[A-Za-z0-9/+=]{16,})",
    ),
    _rule(
        "DOCKER_IDENTITY_TOKEN",
        r'(?i).*"(?:identitytoken|registrytoken)" *: *"[^"]+"',
        "Registry identity or bearer token in a Docker config.json",
        ['"identitytoken"', '"registrytoken"'],
        r'(?i)"(?:identitytoken|registrytoken)" *: *"(?P<secret>[^"]+)',
    ),
    _rule(
        "NPM_AUTH_TOKEN",
        r"(?i)(?:|.*[:\s])(?:_authToken|_auth|_password) *= *" + _VALUE,
        "npm registry credential in an .npmrc (_authToken, _auth, _password), not a ${VAR} reference",
        ["_auth", "_password"],
        r"(?i)(?:^|(?<=[:\s]))(?:_authToken|_auth|_password) *= *" + _VALUE,
    ),
    _rule(
        "NPM_TOKEN",
        r".*?(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])",
        "npm access token (npm_...)",
        ["npm_"],
        r"(?P<secret>npm_[A-Za-z0-9]{36})",
    ),
    _rule(
        "NETRC_PASSWORD",
        r"(?i).*(?:^|\s)password\s+\S+",
        "password entry in a .netrc file",
        ["password"],
        r"(?i)(?:^|\s)password\s+(?P<secret>\S+)",
        paths=r"(?:^|/)[._]netrc$",
    ),
    _rule(
        "AZURE_STORAGE_KEY",
        r"(?i).*AccountKey=[A-Za-z0-9+/]{40,}={0,2}",
        "Azure storage connection string with an AccountKey",
        ["accountkey="],
        r"(?i)AccountKey=(?P<secret>[A-Za-z0-9+/=]+)",
    ),
    _rule(
        "JWT",
        r".*?(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        "JSON Web Token (low confidence: may be a harmless test token)",
        ["eyj"],
        r"(?P<secret>eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+)",
    ),
)
"""ci-gate's additions: well-known token formats and credential files (DISA guide 2.18)."""

DEFAULT_RULES: tuple[SecretRule, ...] = ANCHORE_DEFAULT_RULES + EXTRA_RULES


@dataclass(frozen=True, slots=True)
class SecretSettings:
    """A rules file, loaded: the rules to apply and how to apply them."""

    rules: tuple[SecretRule, ...] = DEFAULT_RULES
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    """Files larger than this many bytes are not searched."""
    exclude_paths: tuple[str, ...] = ()
    """Regexes (re.search) on the path; matching files are not searched."""


def load_secret_rules(path: Path | None = None) -> list[SecretRule]:
    """The rules to apply: the defaults, or the defaults adjusted by the rules file at `path`."""
    return list(load_secret_settings(path).rules)


def load_secret_settings(path: Path | None = None) -> SecretSettings:
    """Rules, max file size and excluded paths from a rules file (module docstring), or the defaults."""
    if path is None:
        return SecretSettings()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read secret rules file {path}: {error}; give a readable YAML file") from None
    try:
        check_shape(text, f"secret rules file {path}", 4 * 1024 * 1024)
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
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
    return _settings_from(document, str(path))


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the line of each mapping under the key `__line__`."""


def _construct_mapping_with_line(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_with_line)

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
        _compile_text(pattern, f"{path}:{line}: exclude_paths entry")
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
    _compile_bytes(rule.regex, f"{where}: rule {rule.name} regex")
    if rule.paths:
        _compile_text(rule.paths, f"{where}: rule {rule.name} paths")
    if rule.secret:
        _compile_text(rule.secret, f"{where}: rule {rule.name} secret")


def _string_list(value: Any, key: str, path: str, line: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AnalysisError(f"{path}:{line}: {key} must be a list of strings")
    return list(value)


def _compile_bytes(pattern: str, what: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as error:
        raise AnalysisError(f"{what} is not a valid regular expression: {error}") from None


def _compile_text(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise AnalysisError(f"{what} is not a valid regular expression: {error}") from None


# --- scanning ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: SecretRule
    match: re.Pattern[bytes]
    """The rule's regex on bytes (Anchore's `re.match(regex.encode(), line)`)."""
    search: re.Pattern[str]
    """The same regex on text, for config values (also `re.match` per line)."""
    secret: re.Pattern[str] | None
    paths: re.Pattern[str] | None
    keywords: tuple[bytes, ...]
    linear: tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[str], re.Pattern[str]] | None = None
    """Separator and token regexes (bytes, then text) deciding the same match in linear time."""

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


@dataclass
class SecretScanner:
    """Applies secret rules to file contents and to the image config. Safe to reuse across images."""

    rules: Sequence[SecretRule] = DEFAULT_RULES
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    """Files larger than this many bytes are not searched (Anchore's MAXFILESIZE)."""
    exclude_paths: Sequence[str] = ()
    _compiled: tuple[_CompiledRule, ...] = field(init=False, repr=False)
    _keywords: Any = field(init=False, repr=False)
    """An Aho-Corasick automaton over every rule's keywords: one linear pass over a file names the
    keywords it holds (1.5x the trie regex it replaced; the secret scan is most of an analysis of a
    text-heavy image). None when no rule has keywords."""
    _unfiltered: bool = field(init=False, repr=False)
    _exclude: re.Pattern[str] | None = field(init=False, repr=False)
    _name_rule: SecretRule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        compiled = []
        for rule in self.rules:
            compiled.append(
                _CompiledRule(
                    rule=rule,
                    match=_compile_bytes(rule.regex, f"secret rule {rule.name} regex"),
                    search=_compile_text(rule.regex, f"secret rule {rule.name} regex"),
                    secret=_compile_text(rule.secret, f"secret rule {rule.name} secret") if rule.secret else None,
                    paths=_compile_text(rule.paths, f"secret rule {rule.name} paths") if rule.paths else None,
                    keywords=tuple(keyword.lower().encode("utf-8") for keyword in rule.keywords),
                    linear=_linear_equivalent(rule),
                )
            )
        self._compiled = tuple(compiled)
        # A keyword containing another is redundant for "is any present"; a rule is concerned by a
        # hit when one of its own keywords contains the keyword found.
        minimal = {k for item in compiled for k in item.keywords}
        minimal = {k for k in minimal if not any(other != k and other in k for other in minimal)}
        self._keywords = None
        if minimal:
            automaton = ahocorasick.Automaton()
            for keyword in minimal:
                # latin-1 maps every byte to one character, so byte content is searched as it is.
                automaton.add_word(keyword.decode("latin-1"), keyword)
            automaton.make_automaton()
            self._keywords = automaton
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

    def scan_file(self, path: str, layer_index: int, content: bytes) -> list[SecretFinding]:
        """The secrets in one file's content: one finding per rule and matching line (1-based).

        One secret gives one finding: when two rules point at the same spot of a line (Anchore's
        AWS_ACCESS_KEY and AWS_ACCESS_KEY_ID on `aws_access_key_id = AKIA...`), the earlier rule
        in the list keeps it, so Anchore's names win.
        """
        if not content:
            return []
        lowered = content.lower()
        hits = {keyword for _, keyword in self._keywords.iter(lowered.decode("latin-1"))} if self._keywords else set()
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
                preview, offset = _preview(line.decode("utf-8", errors="replace"), item.secret, 0)
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

    def scan_config(self, config: Mapping[str, Any]) -> list[SecretFinding]:
        """Secrets in the image config blob: Env values and names, history `created_by`, labels."""
        findings: list[SecretFinding] = []
        inner = config.get("config") or config.get("Config")
        inner = inner if isinstance(inner, Mapping) else {}
        env = inner.get("Env")
        for item in env if isinstance(env, list) else []:
            if not isinstance(item, str):
                continue
            name, _, value = item.partition("=")
            findings.extend(self._scan_assignment("env", f"ENV:{name}", None, name, value, item))
        labels = inner.get("Labels")
        for key, value in labels.items() if isinstance(labels, Mapping) else ():
            text = value if isinstance(value, str) else ""
            findings.extend(self._scan_assignment("label", f"label:{key}", None, str(key), text, f"{key}={text}"))
        history = config.get("history")
        entries = [(index, item) for index, item in enumerate(history if isinstance(history, list) else [])]
        entries = [(index, item) for index, item in entries if isinstance(item, Mapping)]
        layers = history_layer_indexes([item for _, item in entries])
        for (index, entry), layer_index in zip(entries, layers, strict=True):
            created_by = entry.get("created_by")
            if isinstance(created_by, str) and created_by:
                findings.extend(self._scan_history(index, layer_index, created_by))
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
            for match in _ASSIGNMENT.finditer(line):
                name, value = match.group("name"), _unquote(match.group("value"))
                if value.strip() and is_secret_name(name) and not _is_reference(value):
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
        if self._keywords is not None:
            for _, hit in self._keywords.iter(lowered_text):
                concerned.update(self._rules_for_hit.get(hit, ()))
        if not concerned and not self._unfiltered:
            return mask_spans(text, spans) if spans else text  # the common case: one automaton pass
        offset = 0
        for line in text.split("\n"):
            lowered = line.lower()
            for index, item in enumerate(self._compiled):
                if item.paths is not None or (item.keywords and index not in concerned):
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

    # --- helpers ---------------------------------------------------------------------------------

    def _scan_assignment(
        self, where: str, path: str, layer_index: int | None, name: str, value: str, text: str
    ) -> list[SecretFinding]:
        findings = self._scan_text(where, path, layer_index, text)
        if not findings and value.strip() and is_secret_name(name) and not _is_reference(value):
            findings.append(self._name_finding(where, path, layer_index, name, value))
        return findings

    def _scan_history(self, index: int, layer_index: int | None, created_by: str) -> list[SecretFinding]:
        path = f"history[{index}]"
        findings = self._scan_text("history", path, layer_index, created_by)
        if findings:
            return findings
        for match in _ASSIGNMENT.finditer(created_by):
            name, value = match.group("name"), _unquote(match.group("value"))
            if value.strip() and is_secret_name(name) and not _is_reference(value):
                findings.append(self._name_finding("history", path, layer_index, name, value))
        return findings

    def _scan_text(self, where: str, path: str, layer_index: int | None, text: str) -> list[SecretFinding]:
        findings = []
        claimed: set[tuple[int, int]] = set()
        lowered = text.lower()
        for item in self._compiled:
            if item.paths is not None:
                continue  # a file-specific rule (.netrc) means nothing in a config string
            if item.keywords and not any(keyword.decode("utf-8") in lowered for keyword in item.keywords):
                continue
            for number, line in enumerate(text.split("\n")):
                if item.matches_text(line):
                    preview, offset = _preview(line, item.secret, 0)
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
            preview=f"{name}={_mask(value)}",
            regex=self._name_rule.anchore_name,
        )


def _linear_equivalent(
    rule: SecretRule,
) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[str], re.Pattern[str]] | None:
    original = next((default for default in ANCHORE_DEFAULT_RULES if default.name == rule.name), None)
    if original is None or original.regex != rule.regex or rule.name not in _LINEAR_EQUIVALENTS:
        return None
    separator, token = _LINEAR_EQUIVALENTS[rule.name]
    return (
        re.compile(separator.encode()),
        re.compile(token.encode()),
        re.compile(separator),
        re.compile(token),
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


_PRINTABLE = re.compile(r"[^\x20-\x7e]")

_IDENTIFIER = re.compile(r"[A-Za-z_.\-]+")
"""A word-like token (a key name, `-----BEGIN`): context, not a value."""
_TOKEN = re.compile(r"[^\s\"'=:,;()\[\]{}<>`]+")
_ASSIGNED = re.compile(r"(?<=[=:])\s*[\"']?([^\s\"',;{}\[\]]+)")


def _redact_context(text: str) -> str:
    """Mask each value-like token before a secret: assigned values, long or digit-bearing tokens."""
    spans: list[tuple[int, int]] = [match.span(1) for match in _ASSIGNED.finditer(text)]
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if (
            len(token) >= 8
            and (any(char.isdigit() for char in token) or len(token) >= 24)
            and not _IDENTIFIER.fullmatch(token)
        ):
            spans.append(match.span())
    return _mask_spans(text, spans)


def _preview(line: str, secret: re.Pattern[str] | None, start: int) -> tuple[str, int | None]:
    """A short, redacted excerpt of a matching line, and where on the line the secret starts.

    The context before the secret is kept (with anything value-like in it masked), the secret is
    masked, and nothing after it is kept. Without a way to locate the secret, only the first few
    characters of the line are kept and the position is None.
    """
    line = _PRINTABLE.sub("?", line)
    match = secret.search(line, start) if secret is not None else None
    if match is None:
        stripped = line.strip()
        return (_mask(stripped) if stripped else ""), None
    begin, end = match.span("secret") if "secret" in match.re.groupindex else match.span()
    # Redact before cutting to length, so a cut can never leave part of another secret unmasked.
    context = line[:begin].lstrip()
    cut = len(context) > 4 * _PREVIEW_PREFIX_LIMIT
    if cut:
        # Keep redaction cheap on huge lines; drop the cut token whole so no fragment survives.
        context = context[-4 * _PREVIEW_PREFIX_LIMIT :]
        blank = min((context.find(char) for char in " \t" if char in context), default=len(context))
        context = context[blank:].lstrip()
    shown = _redact_context(context)
    if cut or len(shown) > _PREVIEW_PREFIX_LIMIT:
        shown = "…" + shown[-_PREVIEW_PREFIX_LIMIT:]
    value = line[begin:end]
    return (shown + _mask(value) if value else shown.rstrip()), begin


_DEFAULT_SCANNER: SecretScanner | None = None


def redact_secrets(text: str) -> str:
    """`SecretScanner.redact` with the default rules: mask secrets in text the analysis keeps."""
    global _DEFAULT_SCANNER
    if _DEFAULT_SCANNER is None:
        _DEFAULT_SCANNER = SecretScanner()
    return _DEFAULT_SCANNER.redact(text)
