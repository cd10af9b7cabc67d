"""The program's error types: one base, one subclass per stage of the flow.

Every error carries a message a user can act on (what is wrong and how to fix it). The CLI turns
any `CiGateError` into a single line on stderr and exit code 2; no traceback unless `--debug`.
Messages must never contain a secret found in an image or a credential.
"""

from __future__ import annotations

EXIT_PASS = 0
"""The image may be pushed (GO, or WARN without --fail-on warn)."""
EXIT_STOP = 1
"""The policy said STOP (or WARN with --fail-on warn)."""
EXIT_ERROR = 2
"""ci-gate could not decide: bad input, an unreadable image, an unreachable backend."""


class CiGateError(Exception):
    """Base of every error ci-gate reports to the user as "could not decide" (exit 2)."""

    def __str__(self) -> str:
        # Wherever a message goes (stderr, serve's failure reasons and log, a report's warning), it
        # is one line, capped, with anything secret-looking masked: messages quote attacker-chosen
        # text (a media type, a digest, a file name) and must not carry a secret or a CI command.
        from ci_gate.redaction import safe_message

        return safe_message(super().__str__())


class UsageError(CiGateError):
    """A flag, option or argument is wrong."""


class SourceError(CiGateError):
    """The image could not be opened or read: missing path, bad archive, registry failure, digest mismatch."""


class LimitExceededError(SourceError):
    """A configured safety limit stopped reading (decompression bomb, too many files)."""


class AnalysisError(CiGateError):
    """The image was read but could not be analysed."""


class PolicyError(CiGateError):
    """A policy document is invalid or cannot be evaluated."""


class VulnerabilityDataError(CiGateError):
    """The vulnerability store is missing, corrupt, or an import failed."""


class BackendError(CiGateError):
    """A backend (embedded or Anchore Enterprise) could not produce an evaluation."""


class ReportError(CiGateError):
    """A report could not be written."""


class PublishError(CiGateError):
    """A comment or summary could not be published."""


QUOTE_LIMIT = 80
"""Characters of input text an error line may quote: enough to recognise it, too few to flood a log."""


def quoted(text: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of attacker-controlled text for an error line, cut to `limit` characters with a count of
    the rest, so a 10 MB media type or YAML line cannot become a 10 MB line on stderr."""
    shown = text if isinstance(text, str) else str(text)
    if len(shown) <= limit:
        return repr(shown)
    return f"{shown[:limit]!r}… ({len(shown):,} characters)"


def clipped(text: object, limit: int = QUOTE_LIMIT) -> str:
    """Like `quoted`, without the quotes, for names listed in an error line (tags, platforms): control
    characters are escaped and the text is cut to `limit` characters."""
    shown = text if isinstance(text, str) else str(text)
    escaped = shown[:limit].encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped + ("…" if len(shown) > limit else "")
