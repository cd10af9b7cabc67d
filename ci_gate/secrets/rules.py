"""The secret rules: Anchore's five default regexes plus ci-gate's well-known token formats.

Anchore's rules and their `NAME=REGEX` spelling are those of anchore-engine's default
`secret_search` analyzer config (anchore_engine/conf/analyzer_config.yaml), so the messages of
Anchore's `secret_scans` trigger carry the same text. docs/secret-rules.md describes the rules for
users; `SecretScanner` (ci_gate.secrets.scanner) applies them. A pattern that does not compile
raises `SecretRuleError`, a `ValueError`: this package stands below the error base, and the analyze
stage, which reads the rules file, turns it into its `AnalysisError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


class SecretRuleError(ValueError):
    """A secret rule's pattern is not a valid regular expression; the message names the rule."""


DEFAULT_MAX_FILE_SIZE = 10000
"""Anchore's default MAXFILESIZE for secret_search, in bytes."""

SECRET_ENV_NAME = "SECRET_ENV_NAME"
"""The rule that fires on a secret-looking variable name with a value (ENV, ARG, build args, labels)."""


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


def linear_equivalent(
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


def compile_bytes(pattern: str, what: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as error:
        raise SecretRuleError(f"{what} is not a valid regular expression: {error}") from None


def compile_text(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise SecretRuleError(f"{what} is not a valid regular expression: {error}") from None
