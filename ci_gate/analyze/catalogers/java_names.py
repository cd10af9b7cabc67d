"""A java archive's name, version and type from its file name, as syft's java-archive-cataloger
reads them (syft/pkg/cataloger/java/archive_filename.go)."""

from __future__ import annotations

import posixpath
import re
import unicodedata

JAVA_ARCHIVE = "java-archive"
JENKINS_PLUGIN = "jenkins-plugin"

# syft's file-name pattern is RE2 with (?U) (ungreedy): every quantifier below is the lazy form of
# syft's, so Python's backtracking picks the same split of name and version.
_FILE_NAME_PATTERN = re.compile(
    r"^(?P<name>(?:[A-Za-z][A-Za-z0-9_.]*?(?:\.[A-Za-z][A-Za-z0-9_.]*?)*?-??)+?)"
    r"(?:-(?P<version>(\d.*?|(build\d+?.*?)|(rc??\d+?(?:^[A-Za-z].*?)??))))??$",
    re.IGNORECASE | re.ASCII,
)
_SECONDARY_VERSION_PATTERN = re.compile(
    r"(?:[._-](?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[A-Za-z].*)?))))?$", re.ASCII)
_JAVA_IDENTIFIER_START = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Sc", "Pc"))


def split_file_name(path: str) -> tuple[str, str]:
    """A java archive's name and version from its file name, as syft splits them."""
    base = posixpath.basename(path)
    stem, extension = posixpath.splitext(base)
    if not extension:
        stem = base
    match = _FILE_NAME_PATTERN.match(stem)
    name = (match.group("name") or "") if match else ""
    version = (match.group("version") or "") if match else ""
    if not version:
        secondary = _SECONDARY_VERSION_PATTERN.search(name)
        if secondary and secondary.group("version"):
            version = secondary.group("version")
            name = name[: len(name) - len(version) - 1]
    return name, version


def _is_java_identifier(field_text: str) -> bool:
    return bool(field_text) and unicodedata.category(field_text[0]) in _JAVA_IDENTIFIER_START


def name_from_file_name(name: str) -> str:
    if "." in name:
        if name.startswith("org.eclipse."):
            return name
        fields = name.split(".")
        if all(_is_java_identifier(item) for item in fields):
            return fields[-1]
    return name


def archive_type(path: str) -> str:
    extension = posixpath.splitext(path)[1].lower().lstrip(".")
    return JENKINS_PLUGIN if extension in ("jpi", "hpi") else JAVA_ARCHIVE
