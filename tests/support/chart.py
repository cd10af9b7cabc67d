"""Render the Helm chart in integrations/kubernetes/ci-gate without helm.

helm is not packaged in Debian, so the templates are rendered by a renderer that knows exactly the
template syntax the chart uses and fails on anything else: `{{ .Values.x }}`, `{{ .Release.Namespace }}`,
the functions `quote` and `nindent N`, and whole-line `{{- if PATH }}` / `{{- if not PATH }}` /
`{{- else }}` / `{{- end }}` blocks (a condition is Helm's truthiness: empty string, 0, false, an
empty list or map are false). Used by the admission manifests test and the many-replicas chart test.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "integrations" / "kubernetes" / "ci-gate"
TEMPLATES = ("secret", "configmap", "deployment", "service", "webhook", "fleet")
"""Every template of the chart, in the order `ci-gate admission manifests` prints its objects."""

_CONDITION = re.compile(r"^\{\{- (if|if not) (\.[A-Za-z0-9_.]+) \}\}$")


def lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.lstrip(".").split("."):
        if not isinstance(value, dict) or part not in value:
            raise AssertionError(f"the chart uses {path}, which the values do not define")
        value = value[part]
    return value


def _conditionals(text: str, context: dict[str, Any]) -> str:
    """Keep the lines of the branches taken; the `{{- if }}` lines themselves go (`{{-` trims)."""
    kept: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch taken, every enclosing branch taken)
    for line in text.split("\n"):
        stripped = line.strip()
        match = _CONDITION.match(stripped)
        enclosing = all(taken for taken, _ in stack)
        if match:
            truth = bool(lookup(context, match.group(2)))
            stack.append((truth if match.group(1) == "if" else not truth, enclosing))
        elif stripped == "{{- else }}":
            assert stack, "{{- else }} without {{- if }}"
            taken, outer = stack.pop()
            stack.append((not taken, outer))
        elif stripped == "{{- end }}":
            assert stack, "{{- end }} without {{- if }}"
            stack.pop()
        elif enclosing:
            kept.append(line)
    assert not stack, "an {{- if }} without its {{- end }}"
    return "\n".join(kept)


def render_template(text: str, values: dict[str, Any], namespace: str) -> str:
    """One template rendered with these values into this namespace."""
    context = {"Values": values, "Release": {"Namespace": namespace}}

    def expression(match: re.Match[str]) -> str:
        parts = [part.strip() for part in match.group(1).split("|")]
        value = lookup(context, parts[0])
        for function in parts[1:]:
            if function == "quote":
                value = json.dumps(str(value))
            elif function.startswith("nindent "):
                spaces = " " * int(function.split()[1])
                value = "\n" + "\n".join(spaces + line for line in str(value).split("\n"))
            else:
                raise AssertionError(f"the test renderer does not know the template function {function!r}")
        return str(value)

    rendered = re.sub(r"\{\{ *([^{}-][^{}]*?) *\}\}", expression, _conditionals(text, context))
    assert "{{" not in rendered, "a template action the test renderer does not know"
    return rendered


def default_values() -> dict[str, Any]:
    """values.yaml, parsed (a fresh copy each time)."""
    return dict(copy.deepcopy(yaml.safe_load((CHART / "values.yaml").read_text())))


def render_chart(values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Every object the chart renders, in template order."""
    documents: list[dict[str, Any]] = []
    for name in TEMPLATES:
        text = (CHART / "templates" / f"{name}.yaml").read_text()
        documents.extend(d for d in yaml.safe_load_all(render_template(text, values, namespace)) if d)
    return documents
