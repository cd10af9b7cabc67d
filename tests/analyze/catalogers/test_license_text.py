"""License files named by their text: real license texts shipped by Debian, and near misses."""

from __future__ import annotations

from pathlib import Path

from ci_gate.analyze.catalogers.license_text import identify_licenses

COMMON_LICENSES = Path("/usr/share/common-licenses")


def test_full_texts() -> None:
    assert identify_licenses((COMMON_LICENSES / "Apache-2.0").read_text()) == ["Apache-2.0"]
    assert identify_licenses((COMMON_LICENSES / "BSD").read_text()) == ["BSD-3-Clause"]


def test_apache_notice_in_a_comment_block() -> None:
    notice = """/*
 * Copyright (c) 2008-2013 Someone
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */"""
    assert identify_licenses(notice) == ["Apache-2.0"]


def test_a_mention_in_longer_prose_is_not_a_license() -> None:
    prose = ("This product includes software developed by many people. " * 40
             + "Parts are licensed under the Apache License, Version 2.0; you may not use this file except in "
             "compliance with the License.")
    assert identify_licenses(prose) == []
    assert identify_licenses("") == []
    assert identify_licenses((COMMON_LICENSES / "GPL-3").read_text()) == []  # not one we name
