"""The shared streaming shape: what an interrupted analysis left never leaks into the next one."""

from __future__ import annotations

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.ruby import GemSpecCataloger
from tests.support.catalogers import File, SquashedView

SPEC = b's.name = "thing".freeze\ns.version = "0.4.0"\n'
PATH = "/usr/local/bundle/specifications/thing-0.4.0.gemspec"


def test_an_abandoned_analysis_leaves_nothing_behind() -> None:
    cataloger = GemSpecCataloger()
    first = CatalogContext(final=SquashedView([{PATH: File(SPEC)}]), layers=[])
    cataloger.visit(Evidence(PATH, 0, SPEC, len(SPEC)), first)
    # The first analysis fails before `catalog`. The next image has the same path in its first
    # layer, but as a link the walk shows no cataloger: nothing of the first image may appear.
    second = CatalogContext(final=SquashedView([{PATH: File(b"")}]), layers=[])
    assert cataloger.catalog([], second) == []
    # A complete analysis still reports what it visited.
    third = CatalogContext(final=SquashedView([{PATH: File(SPEC)}]), layers=[])
    cataloger.visit(Evidence(PATH, 0, SPEC, len(SPEC)), third)
    assert [(item.name, item.version) for item in cataloger.catalog([], third)] == [("thing", "0.4.0")]


def test_unexpected_errors_become_warnings() -> None:
    class Broken(GemSpecCataloger):
        def parse(self, evidence: Evidence, context: CatalogContext) -> list:  # type: ignore[type-arg]
            raise KeyError("boom")

    context = CatalogContext(final=SquashedView([{PATH: File(SPEC)}]), layers=[])
    cataloger = Broken()
    cataloger.visit(Evidence(PATH, 0, SPEC, len(SPEC)), context)
    assert cataloger.catalog([], context) == []
    assert context.warnings == [
        f"ruby-installed-gemspec-cataloger: {PATH} (layer 1): could not be read (KeyError)"]
