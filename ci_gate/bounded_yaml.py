"""Limits on YAML documents ci-gate reads (policies, `.ci-gate.yaml`, secret rules, policy tests).

YAML has two ways to make a small file cost without bound. Aliases: nine anchors that each repeat
the one before nine times (a "billion laughs") are 1 KB of text but a billion nodes to anything that
walks the data. Nesting: libyaml's loader recurses in C for each level, and 100,000 `[` crash the
process (a segmentation fault, not an exception). `check_shape` reads the document's event stream
once, with libyaml's parser, which keeps its own stack and does not recurse, and refuses a document
that is too large, too deep, or expands to too many nodes before any loader builds it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 100
"""Nesting of mappings and sequences; a policy bundle needs about ten."""
MAX_NODES = 1_000_000
"""Nodes of the document with every alias expanded; the largest real policy has a few hundred thousand."""

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(ValueError):
    """The document exceeds a limit; the message says which and what to do."""


def check_shape(text: str, what: str, max_bytes: int, *, max_depth: int = MAX_DEPTH,
                max_nodes: int = MAX_NODES) -> None:
    """Raise YamlLimitError when `text` is longer than `max_bytes`, nests deeper than `max_depth`, or
    expands through aliases to more than `max_nodes` nodes. Syntax errors are left to the loader,
    which reports them with a position."""
    if len(text) > max_bytes:
        raise YamlLimitError(f"{what} is {len(text):,} characters, more than the {max_bytes:,} allowed; it is "
                             "not a policy or settings file ci-gate can use")
    depth = 0
    nodes = 0
    sizes: dict[str, int] = {}
    """Expanded node count of each anchored node, for its aliases."""
    open_collections: list[tuple[str | None, int]] = []
    try:
        for event in yaml.parse(text, Loader=_Parser):
            if isinstance(event, yaml.AliasEvent):
                nodes += sizes.get(event.anchor or "", 1)
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                nodes += 1
                depth += 1
                if depth > max_depth:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise YamlLimitError(f"{what} nests more than {max_depth} levels deep (line {line}); it is "
                                         "corrupt or hostile")
                open_collections.append((event.anchor, nodes))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, start = open_collections.pop()
                if anchor:
                    sizes[anchor] = nodes - start + 1
            if nodes > max_nodes:
                raise YamlLimitError(f"{what} expands to more than {max_nodes:,} values through its aliases "
                                     "(&anchor / *alias); a YAML bomb? Write the values out instead")
    except yaml.YAMLError:
        return  # the loader reports the syntax error, with its line and column
