"""ci_gate.redaction: what is secret-looking, how it is masked, and text made safe to print."""

from __future__ import annotations

import base64

import pytest

from ci_gate.errors import SourceError
from ci_gate.model import Analysis, EnvVar, FileRecord, ImageConfig, ImageIdentity, Package, SecretFinding
from ci_gate.redaction import (
    escape_control,
    redact_base64_text,
    redact_message,
    redact_model,
    redact_text,
    safe_message,
    terminal_line,
)
from ci_gate.secrets.masking import mask

TOKEN = "ghp_" + "Q7w" * 12


@pytest.mark.parametrize("text, expected", [
    ("DATABASE_URL=postgres://app:Pg5ecretPassw0rd77@db/app", "DATABASE_URL=postgres://app:Pg5e****@db/app"),
    ("https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123456789@github.com/a",
     "https://x-access-token:ghs_****@github.com/a"),
    ("https://abcdefghijklmnopqrstuvwx@github.com/a", "https://abcd****@github.com/a"),  # a token as user name
    ("git+ssh://git@github.com/a/b.git", "git+ssh://git@github.com/a/b.git"),              # a user name alone
    ("-X main.apiToken=abcdefgh12345 -X main.version=1.2", "-X main.apiToken=abc**** -X main.version=1.2"),
    ('curl -H "Authorization: Bearer abcdefghijklmnopqrstuv" x', 'curl -H "Authorization: Bearer abcd****" x'),
    ("PRIVATE-TOKEN: 0123456789abcdef", "PRIVATE-TOKEN: 0123****"),
    (f"Maintainer: Jane <jane@example.com> {TOKEN}", "Maintainer: Jane <jane@example.com> ghp_****"),
    ("Author: John Smith", "Author: John Smith"),
    ("NPM_TOKEN=${NPM_TOKEN}", "NPM_TOKEN=${NPM_TOKEN}"),
    ("/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
     "/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"),
])
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_a_mask_keeps_at_most_four_characters() -> None:
    assert mask("hunter2") == "h****" and mask(TOKEN) == "ghp_****" and mask("ab") == "****"
    masked = redact_text(f"token={TOKEN}")
    assert not any(TOKEN[start:start + 8] in masked for start in range(len(TOKEN) - 7))


def test_messages_mask_keyword_values_too() -> None:
    assert redact_message("login failed: password: hunter2x") == "login failed: password: ****"
    assert redact_message("Author: John") == "Author: John"


def test_the_final_pass_reaches_every_string_and_copies_nothing_clean() -> None:
    clean = tuple(FileRecord(f"/usr/bin/tool{n}", "file", 0o755) for n in range(3))
    analysis = Analysis(
        identity=ImageIdentity(reference="oci-dir:x", scheme="oci-dir", manifest_digest=None, config_digest=None),
        config=ImageConfig(labels={"com.acme.api-token": "s3cr3t-value", "note": f"see {TOKEN}"},
                           env=(EnvVar("PATH", "/bin"),), working_dir=f"/srv/{TOKEN}",
                           healthcheck={"Test": ["CMD", "curl", f"https://u:pw{TOKEN}@h/"]}),
        packages=(Package("p", "1", "npm", metadata={"homepage": "https://u:p4ssword@h/", "nested": [{"x": TOKEN}]}),),
        files=(*clean, FileRecord(f"/opt/{TOKEN}.json", "symlink", 0o777, link_target=f"/run/{TOKEN}")),
        secrets=(SecretFinding("GITHUB_TOKEN", "file", "/x", regex="GITHUB_TOKEN=.*?gh[pousr]_", preview="ghp_****"),),
    )
    masked = redact_model(analysis, redact_text)
    text = repr(masked)
    assert TOKEN[4:12] not in text and "s3cr3t" not in text and "p4ssword" not in text
    assert masked.config.labels["com.acme.api-token"] == "s3c****"
    assert masked.config.working_dir == "/srv/ghp_****"
    assert masked.files[-1].path == "/opt/ghp_****.json" and masked.files[-1].link_target == "/run/ghp_****"
    assert masked.packages[0].metadata["nested"] == [{"x": "ghp_****"}]
    assert masked.secrets[0].regex == "GITHUB_TOKEN=.*?gh[pousr]_"  # the rule's text is kept
    assert all(new is old for new, old in zip(masked.files[:3], clean, strict=True))
    assert masked.identity is analysis.identity
    assert redact_model(masked, redact_text) == masked


def test_control_characters_are_shown_not_obeyed() -> None:
    assert escape_control("a\nb\r\x1b[31m\x00\t\u202e\u2028") == "a\\nb\\r\\x1b[31m\\x00\t\\u202e\\u2028"
    assert terminal_line("  ::error::x") == "  \\::error::x"
    assert terminal_line("tag x\n::error::y") == "tag x\\n::error::y"


def test_error_messages_are_capped_masked_and_one_line() -> None:
    error = SourceError(f"layer has media type 'application/{TOKEN}\n::error::x' " + "A" * 10_000)
    text = str(error)
    assert len(text) < 2100 and text.endswith(" … (cut)")
    assert TOKEN[4:12] not in text and "\n" not in text and "\\n::error::x" in text
    assert safe_message("x" * 50, limit=10) == "x" * 10 + " … (cut)"
    straddling = str(SourceError("A " * 995 + TOKEN))  # the cut falls inside the token: masked first
    assert not any(TOKEN[start:start + 8] in straddling for start in range(len(TOKEN) - 7))


def test_a_submitted_dockerfile_is_returned_masked() -> None:
    encoded = base64.b64encode(b"FROM x\nARG SIGNING_KEY=abcdefgh12345678\nRUN make\n").decode()
    assert base64.b64decode(redact_base64_text(encoded) or "") == b"FROM x\nARG SIGNING_KEY=abcd****\nRUN make\n"
    clean = base64.b64encode(b"FROM x\n").decode()
    assert redact_base64_text(clean) is clean
    assert redact_base64_text(base64.b64encode(b"\xff\xfe").decode()) is None
