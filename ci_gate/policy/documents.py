"""Loading policy documents: Anchore Enterprise v2 policies and legacy v1 bundles, JSON or YAML.

`load_policy` reads a file or `builtin:NAME`, converts a v1 bundle to the v2 shape (policy/v1.py),
and checks everything a policy author can get wrong against the gate declarations
(policy/validation.py, policy/rules.py): unknown gate, trigger or parameter names (with the
nearest valid one), parameter types and enum values, required fields, duplicate ids, mappings
naming missing rule sets or allowlists, bad dates. Every problem carries the file, line and
column of the offending node (policy/positions.py).

Extensions (optional, so a document stays valid for Anchore): `controls` on a rule, `reason`
and `approved_by` on an allowlist item.

What anchore-engine accepts is accepted here too: `comment` on any object; unknown fields (a
warning: at the top level of any document, anywhere in a v1 bundle, whose schema allows them);
allowlist items sharing an id (all of them apply; the first that matches is reported, as in the
engine); a regular expression that does not compile (a warning: the document loads and that rule
reports an error finding when it is evaluated). Rule sets carry their `artifact_type` (`image`,
`source` or `sbom`); `sbom_mappings` select the `sbom` rule sets that an SBOM (`sbom:` source) is
evaluated with.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ci_gate.bounded_yaml import YamlLimitError, check_shape
from ci_gate.errors import PolicyError
from ci_gate.policy.fields import nearest
from ci_gate.policy.model import Policy, PolicyValidationError, Problem
from ci_gate.policy.positions import PositionedReader, read_fast
from ci_gate.policy.validation import DocumentBuilder

BUILTIN_PREFIX = "builtin:"


def read_source(reference: str) -> tuple[str, str]:
    """(text, display name) of a policy file or builtin:NAME."""
    if reference.startswith(BUILTIN_PREFIX):
        name = reference[len(BUILTIN_PREFIX) :]
        packs = builtin_names()
        if name not in packs:
            hint = nearest(name, packs)
            raise PolicyError(f"no built-in policy '{name}'{hint}; built-in policies: {', '.join(packs)}")
        return resources.files("ci_gate.policy.packs").joinpath(f"{name}.yaml").read_text("utf-8"), reference
    path = Path(reference)
    try:
        return path.read_text("utf-8"), reference
    except FileNotFoundError:
        packs = builtin_names()
        if reference in packs or reference.removesuffix(".yaml") in packs:
            name = reference.removesuffix(".yaml")
            raise PolicyError(f"policy file {reference} does not exist; did you mean builtin:{name}?") from None
        raise PolicyError(
            f"policy file {reference} does not exist; give a path or builtin:NAME ({', '.join(packs)})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"cannot read policy file {reference}: {error}") from None


def builtin_names() -> list[str]:
    directory = resources.files("ci_gate.policy.packs")
    return sorted(p.name[: -len(".yaml")] for p in directory.iterdir() if p.name.endswith(".yaml"))


def check_policy(reference: str, strict: bool = True) -> tuple[Policy | None, list[Problem]]:
    """Load and validate; never raises for document problems (only for an unreadable source)."""
    text, source = read_source(reference)
    return check_text(text, source, strict=strict)


MAX_POLICY_CHARS = 32 * 1024 * 1024
"""A policy document's size limit: the largest real bundles (long allowlists) are a few megabytes."""


def check_text(text: str, source: str, strict: bool = True) -> tuple[Policy | None, list[Problem]]:
    """Parse and validate a policy document; problems (never exceptions) for anything wrong with it."""
    try:
        check_shape(text, "the policy document", MAX_POLICY_CHARS)
    except YamlLimitError as error:
        return None, [Problem(str(error))]
    try:
        return _check_text(text, source, strict)
    except RecursionError:
        return None, [Problem("the policy document nests too deeply to be a policy; it is corrupt or hostile")]


def _check_text(text: str, source: str, strict: bool) -> tuple[Policy | None, list[Problem]]:
    json_like = source.lower().endswith(".json") or text.lstrip().startswith("{")
    # Fast path: parse with the C parsers and build; only a document with problems is read again,
    # slowly, to give every problem its line and column.
    data = read_fast(text, json_like)
    if data is not None:
        builder = DocumentBuilder(PositionedReader(), strict)
        policy = builder.policy(data, source)
        if policy is not None and not builder.problems:
            return policy, builder.problems
    reader = PositionedReader()
    data = reader.read(text, json_like)
    if data is None:
        # A document that is only `null` (or `~`, or a bare `!`) parses without a problem of its own.
        return None, reader.problems or [Problem("the document is empty (null); a policy is a mapping")]
    builder = DocumentBuilder(reader, strict)
    policy = builder.policy(data, source)
    return policy, builder.problems


def load_policy(reference: str, strict: bool = False) -> Policy:
    """The policy at a path or `builtin:NAME`; PolicyValidationError when it is invalid.

    `strict` is what `policy validate` uses: end-of-life gates are errors (anchore-engine's
    validate_bundle); evaluation loads leniently and skips them with a warning.
    """
    policy, problems = check_policy(reference, strict=strict)
    if policy is None or any(p.severity == "error" for p in problems):
        raise PolicyValidationError(reference, problems)
    return policy

