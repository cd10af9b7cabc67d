"""Publishing: the one sticky comment per image per change request, and the CI's own summaries.

`publish_comment` is what `run_gate` calls after the reports are written. It never fails the
build: every problem (no token, a read-only fork token, an API that keeps failing) becomes a
warning in the returned notes and the result goes to the job summary instead.

- mode `auto` detects the CI from its variables: GitHub Actions (`GITHUB_ACTIONS=true`), GitLab
  CI (`GITLAB_CI=true`), Jenkins multibranch (`CHANGE_ID` + `CHANGE_URL` of a GitHub pull request
  or a GitLab merge request); `github` / `gitlab` force the API; `off` posts nothing.
- In GitHub Actions, whatever the mode: the job summary (`GITHUB_STEP_SUMMARY`), the step outputs
  (`GITHUB_OUTPUT`: final action, counts, report paths) and annotations on Dockerfile lines.
- `CI_GATE_OUTPUT=<file>` gets the same outputs as `KEY=value` lines for other CIs (the Jenkins
  library reads it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ci_gate.choices import Choice
from ci_gate.errors import ReportError
from ci_gate.fileio import append_output
from ci_gate.model import Analysis, Evaluation
from ci_gate.redaction import terminal_text

if TYPE_CHECKING:
    from ci_gate.publish.interface import RetryBudget
    from ci_gate.reports.formats import ReportTargets

# The API clients (requests), the retry machinery (tenacity) and the Markdown templates (jinja2) are
# imported below only when a comment or a CI summary is written: `ci-gate gate` outside a CI, the
# common local run, must not pay for them at start-up.

__all__ = ["CommentMode", "detect_provider", "publish_comment"]


class CommentMode(Choice):
    """`--comment`: where the one comment per image goes."""

    AUTO = "auto"
    GITHUB = "github"
    GITLAB = "gitlab"
    REVIEW = "review"
    """`github` plus review comments with suggested Dockerfile fixes (`ci_gate.publish.review`)."""
    OFF = "off"


MODES = CommentMode.values()

NO_PROVIDER_NOTE = "--comment auto: no GitHub Actions, GitLab CI or Jenkins change request detected; no comment posted"


def detect_provider(env: Mapping[str, str]) -> str | None:
    """github, gitlab or None, from the CI's own variables."""
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    change_url = env.get("CHANGE_URL", "")
    if env.get("CHANGE_ID") and change_url:
        if "/-/merge_requests/" in change_url:
            return "gitlab"
        if "/pull/" in change_url:
            return "github"
    return None


def publish_comment(
    evaluation: Evaluation,
    analysis: Analysis,
    mode: str,
    markdown: str | None = None,
    reports: ReportTargets | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    budget: RetryBudget | None = None,
) -> list[str]:
    """Post or update the comment and write the CI summaries; return notes (warnings) to show.

    `markdown` is the comment body (e.g. rendered from the user's --template); by default the
    built-in comment template. `reports` gives the report paths for the CI outputs.
    """
    environment = os.environ if env is None else env
    out = sys.stdout if stream is None else stream
    notes: list[str] = []
    if mode not in MODES:
        return [f"unknown --comment mode {mode!r} (use auto, github, gitlab, review or off); no comment posted"]
    in_actions = environment.get("GITHUB_ACTIONS") == "true"
    ci_gate_output = environment.get("CI_GATE_OUTPUT")
    provider = "github" if mode == "review" else mode if mode in ("github", "gitlab") else detect_provider(environment)
    if not in_actions and not ci_gate_output and (mode == "off" or provider is None):
        # Nothing to write and nobody to tell: no API client is loaded (a local `gate`).
        return [] if mode == "off" else [NO_PROVIDER_NOTE]
    from ci_gate.publish import github, gitlab
    from ci_gate.publish.interface import NoChangeRequest, PublishDenied, PublishTransient, RetryBudget

    outputs = github.gate_outputs(evaluation, reports or {})
    summary_written = False
    if in_actions:
        summary_written = _github_extras(evaluation, analysis, environment, outputs, out, notes)
    if ci_gate_output:
        try:
            append_output(Path(ci_gate_output), "".join(
                f"{name.upper().replace('-', '_')}={' '.join(value.split())}\n" for name, value in outputs.items()))
        except ReportError as error:
            notes.append(f"could not write CI_GATE_OUTPUT: {error}")

    if mode == "off":
        return notes
    if provider is None:
        notes.append(NO_PROVIDER_NOTE)
        return notes
    context = (
        github.pull_request_from_env(environment)
        if provider == "github"
        else gitlab.merge_request_from_env(environment)
    )
    if isinstance(context, NoChangeRequest) and context.expected:
        # A branch or tag pipeline: nothing to comment on, and nothing wrong either.
        notes.append(f"{context.reason}; no comment posted")
        return notes
    budget = budget or RetryBudget(total_seconds=_float(environment.get("CI_GATE_PUBLISH_TIMEOUT"), 120.0))
    from ci_gate.publish.interface import CommentApi, marker_for, upsert_comment
    from ci_gate.reports.common import image_key
    from ci_gate.reports.markdown import render_markdown

    try:
        api: CommentApi
        if provider == "github":
            api = github.GitHubComments(github.require_pull_request(environment))
            limit = github.COMMENT_LIMIT
        else:
            api = gitlab.GitLabNotes(gitlab.require_merge_request(environment))
            limit = gitlab.NOTE_LIMIT
        marker = marker_for(image_key(evaluation, analysis))
        body = markdown if markdown is not None else render_markdown(evaluation, analysis, "comment")
        link = _job_link(environment)
        if link:
            body = f"{body.rstrip()}\n\n<sub>{link}</sub>\n"
        if len(body) + len(marker) + 200 > limit:
            body = body[: limit - len(marker) - 200] + "\n\n… (truncated: see the job summary or the reports)\n"
        result = upsert_comment(api, marker, body, budget)
        notes.append(
            f"{result.action} the ci-gate comment on {api.description}"
            + (f" (removed {result.removed_duplicates} duplicate)" if result.removed_duplicates else "")
        )
        if mode == "review":
            notes.append(_review(evaluation, analysis, environment))
    except (PublishDenied, PublishTransient) as error:
        where = "the job summary" if summary_written else "the job log below"
        notes.append(f"warning: could not comment ({error}); the result is in {where} instead")
        if not summary_written:
            fallback = markdown if markdown is not None else render_markdown(evaluation, analysis, "comment")
            _print_fallback(fallback, out, environment)
    return notes


def _review(evaluation: Evaluation, analysis: Analysis, env: Mapping[str, str]) -> str:
    """The suggested Dockerfile fixes as review comments; a problem is a note, never a failure."""
    from ci_gate.publish import github
    from ci_gate.publish.interface import PublishDenied, PublishTransient
    from ci_gate.publish.review import ReviewComments, post_review_suggestions

    try:
        api = ReviewComments(github.require_pull_request(env))
        return post_review_suggestions(api, evaluation, analysis, env)
    except (PublishDenied, PublishTransient) as error:
        return f"warning: could not post review suggestions ({error}); the fixes are in the comment"


def _github_extras(
    evaluation: Evaluation,
    analysis: Analysis,
    env: Mapping[str, str],
    outputs: Mapping[str, str],
    out: TextIO,
    notes: list[str],
) -> bool:
    from ci_gate.publish import github
    from ci_gate.reports.markdown import render_markdown

    summary_written = False
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            github.write_step_summary(Path(summary_path), render_markdown(evaluation, analysis, "summary"))
            summary_written = True
        except (OSError, ReportError) as error:
            notes.append(f"could not write GITHUB_STEP_SUMMARY: {getattr(error, 'strerror', None) or error}")
    output_path = env.get("GITHUB_OUTPUT")
    if output_path:
        try:
            github.write_outputs(Path(output_path), outputs)
        except (OSError, ReportError) as error:
            notes.append(f"could not write GITHUB_OUTPUT: {getattr(error, 'strerror', None) or error}")
    github.emit_annotations(github.annotation_lines(evaluation, analysis), out)
    return summary_written


def _print_fallback(body: str, out: TextIO, env: Mapping[str, str]) -> None:
    """Where there is no job summary (GitLab, Jenkins): the comment goes to the job log, folded."""
    # The body quotes image content: escaped line by line, it can neither close the GitLab section
    # (ESC, CR) nor start a GitHub workflow command.
    body = terminal_text(body.rstrip())
    if env.get("GITLAB_CI") == "true":
        out.write("\x1b[0Ksection_start:0:ci_gate_summary[collapsed=false]\r\x1b[0Kci-gate summary\n")
        out.write(body + "\n")
        out.write("\x1b[0Ksection_end:0:ci_gate_summary\r\x1b[0K\n")
    else:
        out.write("---- ci-gate summary ----\n" + body + "\n-------------------------\n")
    out.flush()


def _job_link(env: Mapping[str, str]) -> str:
    """A Markdown link to the job that produced the comment (its summary and reports live there)."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"[workflow run]({server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']})"
    if env.get("CI_JOB_URL", "").startswith(("https://", "http://")):
        return f"[job {env.get('CI_JOB_NAME', '')}]({env['CI_JOB_URL']})".replace("[job ]", "[job]")
    if env.get("BUILD_URL", "").startswith(("https://", "http://")):
        return f"[Jenkins build]({env['BUILD_URL']})"
    return ""


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default
