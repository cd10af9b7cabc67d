"""The secret scanner: Anchore's defaults exactly, the extra rules, previews that never leak a secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ci_gate.analyze.image_config import secrets_in_config
from ci_gate.analyze.secret_settings import load_secret_rules, load_secret_settings
from ci_gate.errors import AnalysisError
from ci_gate.model import SecretFinding, to_dict
from ci_gate.redaction import redact_text
from ci_gate.secrets.names import is_secret_name
from ci_gate.secrets.rules import ANCHORE_DEFAULT_RULES, DEFAULT_RULES, SECRET_ENV_NAME, SecretRule, SecretRuleError
from ci_gate.secrets.scanner import SecretScanner

# Distinctive fake secrets: each must never appear in any finding, preview, repr or JSON.
AWS_ID = "AKIAQX7ZPL2M9KWBTR4E"
AWS_SECRET = "qV3nR8tY2wL5kP9sD1fG4hJ7mN0bX6cZ3vQ8rT2u"
GITHUB = "ghp_Zq8Xw2Lk5Vb9Nm3Rt7Yp1Hs4Dg6Fj0Ac2Ee5Uu"
GITHUB_PAT = (
    "github_pat_11ABCDEFG0123456789abc_" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J4i3H2g1F0e9D8c7B6a5Z4y3X2w1V"
)
GITLAB = "glpat-Qw3rTy7uIo9pAs1dFg5h"
SLACK = "xoxb-2718281828-3141592653-Zx9Cv8Bn7Mq6Wl5Ek4Rj3Th2"
GOOGLE = "AIzaSyQ7vB2nM5xL8kJ3hG6fD9sA1pO4iU7yT0r"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQz9Xk2"
NPM = "npm_Xy7Kq2Lm9Vb4Nw8Rt3Yp6Hs1Dg5Fj0Ac7Ee2"
DOCKER_AUTH = "Ym9iOnMzY3JldC1yZWdpc3RyeS1wYXNzd29yZC05OTc3"
AZURE = "Zx3Cv6Bn9Mq2Wl5Ek8Rj1Th4Yp7Ua0Io3Pd6Fg9Hs2Jk5Lz8Xc1Vb4Nm7Qw0Er3Ty6U=="
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1nYXRlLXRlc3QifQ.Qk9Xz7Lm2Vb9Nw4Rt8Yp3Hs6Dg1Fj5"
NETRC = "n3trcP4ssw0rdZq9"
DB_PASSWORD = "Pg5ecr3tPassw0rdXq"
SESSION = "FwoGZXIvYXdzEJr//////////wEaDKq8Lm2Vb9Nw4Rt8Yp3Hs6Dg1Fj5"
GCP_KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7qZx9"

ALL_SECRETS = [
    AWS_ID,
    AWS_SECRET,
    GITHUB,
    GITHUB_PAT,
    GITLAB,
    SLACK,
    GOOGLE,
    STRIPE,
    NPM,
    DOCKER_AUTH,
    AZURE,
    JWT,
    NETRC,
    DB_PASSWORD,
    SESSION,
    GCP_KEY_BODY,
]


def assert_no_secret_leaks(findings: list[SecretFinding]) -> None:
    """No secret, nor any 8-character piece of one, in any rendering of the findings."""
    renderings = [repr(findings), json.dumps(to_dict(findings)), str([to_dict(f) for f in findings])]
    # The rule's regex may spell a token's public prefix (github_pat_); everything else must not.
    without_regex = json.dumps([{k: v for k, v in to_dict(f).items() if k != "regex"} for f in findings])
    for secret in ALL_SECRETS:
        for text in renderings:
            assert secret not in text
        pieces = {secret[index : index + 8] for index in range(len(secret) - 7)}
        leaked = [piece for piece in pieces if piece in without_regex]
        assert not leaked, f"part of a secret leaked: {leaked[:3]}"


@pytest.fixture(scope="module")
def scanner() -> SecretScanner:
    return SecretScanner(DEFAULT_RULES)


def test_anchore_defaults_are_exact() -> None:
    """The NAME=REGEX strings are byte-for-byte Anchore's analyzer_config.yaml entries."""
    assert [rule.anchore_name for rule in ANCHORE_DEFAULT_RULES] == [
        r"AWS_ACCESS_KEY=(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
        r"AWS_SECRET_KEY=(?i).*aws_secret_access_key( *=+ *).*(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}"
        r"(?![A-Za-z0-9/+=]).*",
        r"PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+",
        r'DOCKER_AUTH=(?i).*"auth": *".+"',
        r"API_KEY=(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*",
    ]
    assert all(rule.source == "anchore" for rule in ANCHORE_DEFAULT_RULES)
    assert [rule.name for rule in load_secret_rules()][:5] == [rule.name for rule in ANCHORE_DEFAULT_RULES]


FILE_CASES = [
    # (path, content line, expected rule)
    ("/root/.aws/credentials", f"aws_access_key_id = {AWS_ID}", "AWS_ACCESS_KEY"),
    ("/root/.aws/credentials", f"aws_secret_access_key = {AWS_SECRET}", "AWS_SECRET_KEY"),
    ("/root/.ssh/id_rsa", "-----BEGIN RSA PRIVATE KEY-----", "PRIV_KEY"),
    ("/root/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----", "PRIV_KEY"),
    ("/etc/ssl/private/k.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----", "PRIV_KEY"),
    ("/root/.docker/config.json", f'    "auth": "{DOCKER_AUTH}"', "DOCKER_AUTH"),
    ("/app/settings.ini", f"STRIPE_API_KEY = {AWS_ID}XYZ", "API_KEY"),
    ("/root/key.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "PGP_PRIVATE_KEY"),
    ("/root/key.ppk", "PuTTY-User-Key-File-3: ssh-ed25519", "PUTTY_PRIVATE_KEY"),
    (
        "/app/sa.json",
        f'  "private_key": "-----BEGIN PRIVATE KEY-----\\n{GCP_KEY_BODY}\\n",',
        "GCP_SERVICE_ACCOUNT_KEY",
    ),
    (
        "/app/sa.json",
        f'  "private_key": "-----BEGIN PRIVATE KEY-----\\n{GCP_KEY_BODY}\\n",',
        "PRIVATE_KEY_IN_VALUE",
    ),
    ("/app/.env", f"GH={GITHUB}", "GITHUB_TOKEN"),
    ("/app/deploy.sh", f"curl -H 'Authorization: token {GITHUB_PAT}' x", "GITHUB_FINE_GRAINED_TOKEN"),
    ("/app/.gitlab-token", GITLAB, "GITLAB_TOKEN"),
    ("/app/notify.py", f'SLACK = "{SLACK}"', "SLACK_TOKEN"),
    (
        "/app/notify.py",
        "url = 'https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/Zq8Xw2Lk5Vb9Nm3Rt7Yp'",
        "SLACK_WEBHOOK",
    ),
    ("/app/maps.js", f'const key = "{GOOGLE}";', "GOOGLE_API_KEY"),
    ("/app/pay.rb", f"Stripe.api_key = '{STRIPE}'", "STRIPE_SECRET_KEY"),
    ("/app/env.sh", f"export KEY_ID={AWS_ID}", "AWS_ACCESS_KEY_ID"),
    ("/root/.aws/credentials", f"aws_session_token = {SESSION}", "AWS_SESSION_TOKEN"),
    ("/root/.docker/config.json", f'  "identitytoken": "{DOCKER_AUTH}"', "DOCKER_IDENTITY_TOKEN"),
    ("/app/.npmrc", f"//registry.npmjs.org/:_authToken={NPM}", "NPM_AUTH_TOKEN"),
    ("/app/publish.sh", f"npm config set //registry.npmjs.org/:_authToken {NPM}", "NPM_TOKEN"),
    ("/root/.netrc", f"machine example.com login bob password {NETRC}", "NETRC_PASSWORD"),
    (
        "/app/appsettings.json",
        f'"Storage": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={AZURE}"',
        "AZURE_STORAGE_KEY",
    ),
    ("/app/test.http", f"Authorization: Bearer {JWT}", "JWT"),
]


@pytest.mark.parametrize(("path", "line", "rule"), FILE_CASES)
def test_each_rule_finds_its_secret_and_never_leaks_it(
    scanner: SecretScanner, path: str, line: str, rule: str
) -> None:
    content = f"# header\n{line}\nplain = value\n".encode()
    findings = scanner.scan_file(path, 3, content)
    hits = [finding for finding in findings if finding.rule == rule]
    assert len(hits) == 1, findings
    hit = hits[0]
    assert (hit.where, hit.path, hit.line, hit.layer_index) == ("file", path, 2, 3)
    assert hit.regex.startswith(rule + "=")
    assert hit.preview
    assert_no_secret_leaks(findings)


NEGATIVE_CASES = [
    ("/app/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}"),
    ("/usr/share/doc/x/README", "Set aws_access_key_id to your key id."),
    ("/usr/share/man/man1/ssh-keygen.1", "the private key is written to ~/.ssh/id_rsa"),
    ("/usr/lib/python3/auth.py", 'headers = {"Authorization": "auth"}'),
    ("/root/.docker/config.json", '{"auths": {"r.io": {"auth": ""}}}'),
    ("/usr/share/doc/netrc.txt", f"password {NETRC}"),  # NETRC_PASSWORD only applies to .netrc files
    ("/app/x.py", "token = 'ghp_short'"),
    ("/etc/environment", "DB_PASSWORD_FILE=/run/secrets/db"),
    ("/app/main.go", 'key := os.Getenv("API_KEY")'),
    ("/app/a.txt", "-----BEGIN PUBLIC KEY-----"),
]


@pytest.mark.parametrize(("path", "line"), NEGATIVE_CASES)
def test_look_alikes_are_not_secrets(scanner: SecretScanner, path: str, line: str) -> None:
    assert scanner.scan_file(path, 0, f"{line}\n".encode()) == []


def test_priv_key_keeps_anchores_line_start_anchor(scanner: SecretScanner) -> None:
    """Anchore's PRIV_KEY has no leading `.*`: indented headers do not match it (the extra rule does)."""
    findings = scanner.scan_file("/a", 0, b"key: |\n  -----BEGIN RSA PRIVATE KEY-----\n")
    assert [finding.rule for finding in findings] == ["PRIVATE_KEY_IN_VALUE"]


def test_line_numbers_are_one_based_and_every_matching_line_counts(scanner: SecretScanner) -> None:
    content = (
        f"line one\naws_access_key_id={AWS_ID}\n\n\nAWS_ACCESS_KEY_ID = {AWS_ID[::-1]}\n" + "filler\n" * 50
    ).encode()
    findings = [f for f in scanner.scan_file("/c", 1, content) if f.rule == "AWS_ACCESS_KEY"]
    assert [finding.line for finding in findings] == [2, 5]


def test_last_line_without_newline_and_crlf(scanner: SecretScanner) -> None:
    content = f"a\r\nb\r\naws_secret_access_key = {AWS_SECRET}".encode()
    findings = scanner.scan_file("/c", 0, content)
    assert [(f.rule, f.line) for f in findings] == [("AWS_SECRET_KEY", 3)]


def test_binary_content_is_scanned_sanely(scanner: SecretScanner) -> None:
    blob = (
        bytes(range(256)) * 8 + f"\x00\xffaws_secret_access_key= {AWS_SECRET}\x00\n".encode() + b"\xfe" * 100
    )
    findings = scanner.scan_file("/usr/bin/tool", 0, blob)
    assert [f.rule for f in findings] == ["AWS_SECRET_KEY"]
    assert all(char.isprintable() for char in findings[0].preview)
    assert_no_secret_leaks(findings)


def test_file_without_candidate_is_empty(scanner: SecretScanner) -> None:
    assert scanner.scan_file("/etc/hostname", 0, b"localhost\n") == []
    assert scanner.scan_file("/empty", 0, b"") == []


def test_preview_hides_other_secrets_on_the_line(scanner: SecretScanner) -> None:
    line = f"DB_PASSWORD={DB_PASSWORD} SECRET={AWS_SECRET} api_key={AWS_ID}XYZW trailing={NETRC}"
    findings = scanner.scan_file("/app/.env", 0, line.encode())
    assert "API_KEY" in [f.rule for f in findings]
    assert_no_secret_leaks(findings)
    preview = next(f.preview for f in findings if f.rule == "API_KEY")
    assert preview.endswith("api_key=****")
    assert NETRC[:4] not in preview  # nothing after the secret is kept


def test_wants_respects_size_and_excludes() -> None:
    scanner = SecretScanner(DEFAULT_RULES, max_file_size=100, exclude_paths=["^/usr/share/doc/"])
    assert scanner.wants("/etc/a", 100)
    assert not scanner.wants("/etc/a", 101)
    assert not scanner.wants("/etc/a", 0)
    assert not scanner.wants("/usr/share/doc/x", 10)
    assert SecretScanner(DEFAULT_RULES).wants("/x", 10000)
    assert not SecretScanner(DEFAULT_RULES).wants("/x", 10001)


def test_rule_without_keywords_checks_every_line() -> None:
    rule = SecretRule("ANY_ACME", r".*acme_[0-9a-f]{8}", "", "test")
    findings = SecretScanner([rule]).scan_file("/x", 0, b"nothing\nid acme_0123abcd here\n")
    assert [(f.rule, f.line, f.preview) for f in findings] == [("ANY_ACME", 2, "****")]


@pytest.mark.parametrize(
    ("rule", "line"),
    [(rule, line) for _, line, rule in FILE_CASES],
)
def test_keywords_cover_every_match(rule: str, line: str) -> None:
    """The prefilter is sound: a line a rule matches always holds one of the rule's keywords."""
    definition = next(r for r in DEFAULT_RULES if r.name == rule)
    assert re.match(definition.regex, line)
    assert any(keyword in line.lower() for keyword in definition.keywords)


# --- config --------------------------------------------------------------------------------------


def test_scan_config_env_history_labels(scanner: SecretScanner) -> None:
    config = {
        "config": {
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"DB_PASSWORD={DB_PASSWORD}",
                f"GH={GITHUB}",
                "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
                "NPM_TOKEN=${CI_NPM_TOKEN}",
                "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
                "EMPTY_SECRET=",
            ],
            "Labels": {"org.opencontainers.image.source": "https://x", "deploy.token": SLACK},
        },
        "history": [
            {"created_by": "/bin/sh -c #(nop) ADD file:0123 in / "},
            {"created_by": f"/bin/sh -c #(nop)  ENV API_TOKEN={NETRC}", "empty_layer": True},
            {"created_by": f"|2 NPM_TOKEN={NPM} VERSION=1.2 /bin/sh -c npm ci"},
            {"created_by": f'ARG ADMIN_PASSWORD="{DB_PASSWORD}"', "empty_layer": True},
            {"created_by": "RUN /bin/sh -c apk add libcrypto3=3.1.4-r1 # buildkit"},
            {
                "created_by": f"RUN /bin/sh -c echo '{AWS_SECRET}' "
                "| aws configure set aws_secret_access_key=$(cat) # buildkit"
            },
        ],
    }
    findings = secrets_in_config(scanner, config)
    got = {(f.where, f.path, f.rule, f.layer_index) for f in findings}
    assert got == {
        ("env", "ENV:DB_PASSWORD", SECRET_ENV_NAME, None),
        ("env", "ENV:GH", "GITHUB_TOKEN", None),
        ("label", "label:deploy.token", "SLACK_TOKEN", None),
        ("history", "history[1]", SECRET_ENV_NAME, None),
        ("history", "history[2]", "NPM_TOKEN", 1),
        ("history", "history[3]", SECRET_ENV_NAME, None),
    }
    assert_no_secret_leaks(findings)
    by_path = {f.path: f for f in findings}
    assert by_path["ENV:DB_PASSWORD"].preview == "DB_PASSWORD=****"
    assert by_path["history[3]"].preview == "ADMIN_PASSWORD=****"


def test_scan_config_tolerates_nulls(scanner: SecretScanner) -> None:
    assert secrets_in_config(scanner, {}) == []
    assert secrets_in_config(scanner, {"config": None, "history": None}) == []
    assert secrets_in_config(scanner, {"config": {"Env": None, "Labels": None}, "history": [None, {}]}) == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("MYSQL_ROOT_PASSWORD", True),
        ("GITHUB_TOKEN", True),
        ("API_KEY", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("client_secret", True),
        ("NPM_AUTH_TOKEN", True),
        ("MYSQL_PWD", True),
        ("REDIS_PASS", True),
        ("PRIVATE_KEY", True),
        ("APIKEY", True),
        ("PATH", False),
        ("PWD", False),
        ("OLDPWD", False),
        ("POSTGRES_PASSWORD_FILE", False),
        ("GPG_KEY", False),
        ("PYTHON_GPG_KEYS", False),
        ("KEY_ID", False),
        ("BYPASS_CACHE", False),
        ("TOKENIZER_MODEL", False),
        ("SSH_PUBLIC_KEY", False),
        ("HOME", False),
        ("LANG", False),
    ],
)
def test_secret_name_heuristic(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


# --- the rules file ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    return path


def test_rules_file_adds_disables_and_sets_size(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
max_file_size: 2048
disable: [JWT, NPM_TOKEN]
exclude_paths: ['^/usr/share/doc/']
rules:
  - name: ACME_TOKEN
    regex: '.*acme_[0-9a-f]{16}'
    keywords: [ACME_]
    secret: '(?P<secret>acme_[0-9a-f]+)'
regexp_match:
  - "LEGACY=(?i).*legacy_secret *= *.+"
""",
    )
    settings = load_secret_settings(path)
    names = [rule.name for rule in settings.rules]
    assert "JWT" not in names and "NPM_TOKEN" not in names
    assert names[-2:] == ["ACME_TOKEN", "LEGACY"]
    assert settings.max_file_size == 2048
    scanner = SecretScanner.from_settings(settings)
    findings = scanner.scan_file("/x", 0, b"x acme_0123456789abcdef\nLEGACY_SECRET = s3cr3tvalue\n")
    assert [(f.rule, f.line) for f in findings] == [("ACME_TOKEN", 1), ("LEGACY", 2)]
    assert findings[0].preview == "x ****"
    assert not scanner.wants("/usr/share/doc/a", 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - name: X\n    regex: '(unclosed'\n", r"secrets\.yaml:2: rule X regex is not a valid"),
        ("max_file_size: -1\n", r"secrets\.yaml:1: max_file_size must be a positive"),
        ("disable: [NOPE]\n", r"secrets\.yaml:1: disable names unknown rule 'NOPE'"),
        ("rules:\n  - name: X\n", r"secrets\.yaml:2: rule X needs a regex"),
        ("rules:\n  - regex: x\n    name: 'a b'\n", r"secrets\.yaml:2: rule needs a name"),
        ("max_file_size: 10\nbogus: 1\n", r"secrets\.yaml:1: unknown key\(s\) bogus"),
        ("rules: [\n", r"secrets\.yaml:\d+: secret rules file is not valid YAML"),
        ("- just\n- a list\n", r"secrets\.yaml:1: secret rules file must be a mapping"),
        ("regexp_match: ['NOEQUALS']\n", r"secrets\.yaml:1: regexp_match entry must be NAME=REGEX"),
    ],
)
def test_rules_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        load_secret_rules(write(tmp_path, text))


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="cannot read secret rules file"):
        load_secret_rules(tmp_path / "absent.yaml")


def test_error_messages_never_contain_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, f"rules:\n  - name: X\n    regex: '{GITHUB}('\n")
    with pytest.raises(AnalysisError) as caught:
        load_secret_rules(path)
    assert GITHUB not in str(caught.value)


def test_prefilter_finds_every_keyword_in_any_case(scanner: SecretScanner) -> None:
    """The keyword prefilter is sound: each keyword of each rule, alone in a file, is found in it."""
    def hits(text: bytes) -> set[bytes]:
        return scanner.keywords_in(text.lower())

    for rule in DEFAULT_RULES:
        for keyword in rule.keywords:
            assert hits(f"xx {keyword} yy".encode()), keyword
            assert hits(f"xx {keyword.upper()} yy".encode()), keyword
    assert not hits(b"an ordinary configuration file\nwith = values\n")


@pytest.mark.parametrize(
    ("line", "rules"),
    [
        (f"aws_access_key_id = {AWS_ID}", ["AWS_ACCESS_KEY"]),  # not also AWS_ACCESS_KEY_ID
        (f"//registry.npmjs.org/:_authToken={NPM}", ["NPM_AUTH_TOKEN"]),  # not also NPM_TOKEN
        (f"GH={GITHUB} AWS={AWS_ID}", ["GITHUB_TOKEN", "AWS_ACCESS_KEY_ID"]),  # two secrets, two findings
    ],
)
def test_one_secret_one_finding(scanner: SecretScanner, line: str, rules: list[str]) -> None:
    findings = scanner.scan_file("/x", 0, line.encode())
    assert [finding.rule for finding in findings] == rules


def test_linear_checks_decide_exactly_as_anchores_regexes(scanner: SecretScanner) -> None:
    """For Anchore's quadratic rules the scanner uses two linear searches; they must agree with
    `re.match(regex)` on every line. Lines are built (seeded) from the fragments that matter."""
    import random

    generator = random.Random(20261129)
    fragments = [
        "aws_access_key_id", "AWS_SECRET_ACCESS_KEY", "api_key", "Api-Key", "api key", " ", "  ", "=", "==",
        ":", "/", "+", "x", "#", AWS_ID, AWS_ID[:19], AWS_ID + "Q", AWS_SECRET, AWS_SECRET[:39], AWS_SECRET + "/",
        "A" * 20, "a" * 40, "Z9" * 30, "Z9" * 31,
    ]  # fmt: skip
    linear = [item for item in scanner._compiled if item.linear is not None]
    assert {item.rule.name for item in linear} == {"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "API_KEY"}
    agreed = {True: 0, False: 0}
    for _ in range(20000):
        line = "".join(generator.choice(fragments) for _ in range(generator.randint(1, 9)))
        for item in linear:
            expected = re.match(item.rule.regex, line) is not None
            assert item.matches(line.encode()) is expected, (item.rule.name, line)
            assert item.matches_text(line) is expected, (item.rule.name, line)
            agreed[expected] += 1
    assert agreed[True] > 100 and agreed[False] > 1000  # both outcomes were really exercised


def test_a_customised_anchore_rule_uses_its_own_regex() -> None:
    rule = SecretRule("API_KEY", r"(?i).*api_key=.{4}", "changed", "test", ("api_key",))
    findings = SecretScanner([rule]).scan_file("/x", 0, b"api_key=abcd\n")
    assert [f.rule for f in findings] == ["API_KEY"]
    assert SecretScanner([rule])._compiled[0].linear is None


def test_history_paths_use_the_real_index(scanner: SecretScanner) -> None:
    config = {"history": [None, {"created_by": f"ENV API_TOKEN={NETRC}", "empty_layer": True}]}
    findings = secrets_in_config(scanner, config)
    assert [(f.path, f.layer_index, f.preview) for f in findings] == [("history[1]", None, "API_TOKEN=****")]


def test_secret_name_parts_agree_with_the_documented_regex() -> None:
    """is_secret_name splits names into parts (linear time); it must say what the regex says."""
    import random

    from ci_gate.secrets.names import SECRET_NAME_REGEX

    exceptions = re.compile(
        r"(?i)^(?:OLD)?PWD$|.*[_.\-](?:FILE|PATH|DIR|FILES|PATHS|DIRS)$|(?:^|.*[_.\-])GPG[_.\-]?KEYS?$"
        r"|(?:^|.*[_.\-])PUBLIC[_.\-]?KEY.*"
    )
    words = [
        "PASSWORD", "pass", "PWD", "OLD", "SECRET", "secrets", "TOKEN", "API", "KEY", "KEYS", "ACCESS", "PUBLIC",
        "GPG", "FILE", "DIR", "DB", "MY", "CLIENT", "ID", "APIKEY", "PUBLICKEY", "X", "KEYRING", "CREDENTIALS",
    ]  # fmt: skip
    generator = random.Random(7)
    secret_count = 0
    for _ in range(20000):
        count = generator.randint(1, 4)
        name = "".join(
            generator.choice(words) + (generator.choice("_.-") if index < count - 1 else "") for index in range(count)
        )
        expected = bool(re.fullmatch(SECRET_NAME_REGEX, name)) and not exceptions.fullmatch(name)
        assert is_secret_name(name) is expected, name
        secret_count += expected
    assert 1000 < secret_count < 19000


def test_preview_of_a_huge_line_is_short_and_clean(scanner: SecretScanner) -> None:
    line = "word " * 2000 + f"{DB_PASSWORD}x" * 50 + f" api_key={AWS_ID}"
    findings = scanner.scan_file("/x", 0, line.encode())
    assert [f.rule for f in findings] == ["API_KEY"]
    preview = findings[0].preview
    assert preview.startswith("…") and preview.endswith("api_key=****") and len(preview) < 80
    assert_no_secret_leaks(findings)


def test_history_scan_of_a_huge_dotted_word(scanner: SecretScanner) -> None:
    """`NAME=value` search over history is linear: a long dotted word without `=` is cheap."""
    assert secrets_in_config(scanner, {"history": [{"created_by": "RUN " + "a." * 200_000}]}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/bin/sh -c #(nop)  ENV DB_PASSWORD={DB_PASSWORD}", "/bin/sh -c #(nop)  ENV DB_PASSWORD=Pg5e****"),
        (f"|2 NPM_TOKEN={NPM} VERSION=1.2 /bin/sh -c npm ci", "|2 NPM_TOKEN=npm_**** VERSION=1.2 /bin/sh -c npm ci"),
        (f'ARG ADMIN_PASSWORD="{DB_PASSWORD}"', 'ARG ADMIN_PASSWORD="Pg5e****"'),
        (f"RUN echo {GITHUB} > /t && echo plain {GITHUB}", "RUN echo ghp_**** > /t && echo plain ghp_****"),
        (f"aws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}", "aws_access_key_id = AKIA****\n"
         "aws_secret_access_key = qV3n****"),
        ("RUN apt-get install -y curl=7.88.1-10 && PATH=/x make",
         "RUN apt-get install -y curl=7.88.1-10 && PATH=/x make"),
        ("ENV TOKEN=${CI_TOKEN}", "ENV TOKEN=${CI_TOKEN}"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_masks_secrets_in_kept_text(scanner: SecretScanner, text: str, expected: str) -> None:
    assert scanner.redact(text) == expected
    assert redact_text(text) == expected  # the one redaction every stage uses


def test_redact_leaves_no_secret_in_config_strings(scanner: SecretScanner) -> None:
    file_only = {rule.name for rule in DEFAULT_RULES if rule.paths}  # .netrc syntax means nothing elsewhere
    texts = [f"{rule}: {line}" for _, line, rule in FILE_CASES if rule not in file_only]
    for text in texts:
        redacted = scanner.redact(text)
        for secret in ALL_SECRETS:
            assert secret not in redacted, text


def test_docs_list_every_built_in_rule() -> None:
    """docs/secret-rules.md names each built-in rule with its description (regenerate when rules change)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "secret-rules.md").read_text()
    for rule in DEFAULT_RULES:
        assert f"| `{rule.name}` |" in text and rule.description in text, rule.name
    assert f"| `{SECRET_ENV_NAME}` |" in text


def test_scan_dockerfile(scanner: SecretScanner) -> None:
    text = (
        "FROM node:20\n"
        f"ENV DB_PASSWORD={DB_PASSWORD} LANG=C.UTF-8\n"
        "ARG NPM_TOKEN\n"
        f"RUN echo '//registry.npmjs.org/:_authToken={NPM}' > ~/.npmrc && npm ci\n"
        "ENV API_TOKEN=${API_TOKEN}\n"
        f'LABEL deploy.password="{NETRC}"\n'
        "RUN echo password=hunter22\n"  # a RUN's shell text is not an ENV: only the rules apply
    )
    findings = scanner.scan_dockerfile("build/Dockerfile", text)
    assert [(f.rule, f.where, f.path, f.line, f.layer_index) for f in findings] == [
        (SECRET_ENV_NAME, "dockerfile", "build/Dockerfile", 2, None),
        ("NPM_AUTH_TOKEN", "dockerfile", "build/Dockerfile", 4, None),
        (SECRET_ENV_NAME, "dockerfile", "build/Dockerfile", 6, None),
    ]
    assert_no_secret_leaks(findings)


def test_overlapping_spans_are_masked_as_one() -> None:
    from ci_gate.secrets.masking import mask_spans

    def _mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
        return mask_spans(text, spans, keep=0)  # a finding's preview masks a span whole

    text = "key=ABCDEFGHIJKLMNOPQRSTUVWX tail"
    assert _mask_spans(text, [(4, 20), (10, 28)]) == "key=**** tail"
    assert _mask_spans(text, [(10, 28), (4, 20), (4, 4)]) == "key=**** tail"
    assert _mask_spans(text, []) == text


def test_built_in_patterns_are_compiled_only_for_rules_a_keyword_brought_in() -> None:
    """Start-up compiles none of the built-in patterns; a file holding `akia` compiles that rule's only."""
    scanner = SecretScanner()
    compiled = {item.rule.name for item in scanner._compiled if "match" in vars(item)}
    assert compiled == set()
    assert scanner.scan_file("/etc/motd", 0, b"welcome\n") == []
    assert [f.rule for f in scanner.scan_file("/root/.env", 0, f"key {AWS_ID}\n".encode())] == ["AWS_ACCESS_KEY_ID"]
    compiled = {item.rule.name for item in scanner._compiled if "match" in vars(item)}
    assert compiled == {"AWS_ACCESS_KEY_ID"}


def test_a_user_rule_that_does_not_compile_fails_when_the_scanner_is_made() -> None:
    """Only built-in rules wait for first use: a bad pattern given by the user is reported up front."""
    with pytest.raises(SecretRuleError, match="secret rule BROKEN secret is not a valid regular expression"):
        SecretScanner([SecretRule("BROKEN", r".*token", "", "test", ("token",), "", r"(?P<secret>")])
