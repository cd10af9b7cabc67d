"""Layer attribution: the layer that introduced a package, not the last one that rewrote the DB."""

from __future__ import annotations

from ci_gate.analyze.catalogers.attribution import introduced_layers


def test_a_package_is_credited_to_the_layer_that_installed_it_not_the_last_rewrite() -> None:
    versions = [
        (0, {"busybox": "1.36", "musl": "1.2"}),
        (2, {"busybox": "1.36", "musl": "1.2", "curl": "8.5"}),
        (3, {"busybox": "1.36", "musl": "1.2", "curl": "8.5", "git": "2.43"}),
    ]
    assert introduced_layers(versions) == {"busybox": 0, "musl": 0, "curl": 2, "git": 3}


def test_an_upgrade_is_credited_to_the_upgrading_layer() -> None:
    versions = [(0, {"openssl": "3.0.1"}), (1, {"openssl": "3.0.2"}), (4, {"openssl": "3.0.2"})]
    assert introduced_layers(versions) == {"openssl": 1}


def test_a_package_removed_and_installed_again_is_credited_to_the_reinstall() -> None:
    versions = [(0, {"vim": "9.0"}), (1, {}), (2, {"vim": "9.0"})]
    assert introduced_layers(versions) == {"vim": 2}


def test_only_packages_of_the_final_database_are_attributed() -> None:
    assert introduced_layers([(0, {"gone": "1"}), (1, {"kept": "2"})]) == {"kept": 1}
    assert introduced_layers([]) == {}


def test_evidence_is_kept_only_when_its_last_version_is_the_final_file() -> None:
    from ci_gate.analyze.catalogers.attribution import final_versions
    from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
    from tests.support.catalogers import SquashedView, layers_of

    evidence = [Evidence("/a", 0, b"1", 1), Evidence("/a", 1, b"2", 1), Evidence("/b", 0, b"x", 1),
                Evidence("/c", 0, b"y", 1)]
    # /a as written by layer 1; /b replaced in layer 2 by something we saw no content of (a symlink);
    # /c deleted.
    view = SquashedView(last_writer={"/a": 1, "/b": 2})
    kept = final_versions(evidence, CatalogContext(final=view, layers=layers_of(3)))
    assert {path: [item.layer_index for item in items] for path, items in kept.items()} == {"/a": [0, 1]}
