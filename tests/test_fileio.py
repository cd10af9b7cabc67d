"""The one output writer (ci_gate/fileio.py): what each kind of path gets.

Devices are made with mknod under tmp_path (never the real /dev/null, which other programs on the
machine use): this suite runs as root (.ci/run), and a writer that replaced a device by a rename
would turn it into a regular file.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

from ci_gate.errors import ReportError
from ci_gate.fileio import append_output, binary_output, text_output, write_output
from tests.support.devices import NULL_DEVICE, make_null_device


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    return make_null_device(tmp_path / "null")


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    target.write_text("old")
    target.chmod(0o600)
    inode = target.stat().st_ino
    write_output(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_ino != inode  # a rename, not a rewrite in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _entries(tmp_path) == ["report.xml"]


def test_a_new_file_gets_the_mode_asked_for_and_its_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested" / "evaluation.json"
    write_output(target, "{}", mode=0o640)
    assert target.read_text() == "{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "analysis.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError), text_output(target) as out:
        out.write('{"half": ')
        raise RuntimeError("the encoder failed halfway")
    assert target.read_text() == "previous"
    assert _entries(tmp_path) == ["analysis.json"]


def test_an_interrupt_while_writing_leaves_no_partial_output(tmp_path: Path) -> None:
    target = tmp_path / "sbom.json"
    with pytest.raises(KeyboardInterrupt), binary_output(target) as out:
        out.write(b'{"half": ')
        raise KeyboardInterrupt
    assert _entries(tmp_path) == []


def test_a_character_device_is_written_through_and_stays_a_device(null_device: Path) -> None:
    write_output(null_device, "the analysis\n")
    with text_output(null_device) as out:
        out.write("streamed")
    append_output(null_device, "KEY=value\n")
    status = null_device.stat()
    assert stat.S_ISCHR(status.st_mode) and status.st_rdev == NULL_DEVICE
    assert _entries(null_device.parent) == ["null"]


def test_a_symlink_to_a_device_is_followed_and_both_stay(null_device: Path) -> None:
    link = null_device.parent / "report.json"
    link.symlink_to(null_device)
    write_output(link, "{}")
    assert link.is_symlink() and os.readlink(link) == str(null_device)
    assert stat.S_ISCHR(null_device.stat().st_mode)


def test_a_fifo_is_written_through_to_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read)
    reader.start()
    write_output(fifo, "<testsuites/>\n")
    reader.join(timeout=10)
    assert received == [b"<testsuites/>\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert _entries(tmp_path) == ["pipe"]


def test_a_unix_socket_is_written_through(tmp_path: Path) -> None:
    path = tmp_path / "collector.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
            received.append(b"".join(chunks))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        write_output(path, "sarif\n")
        thread.join(timeout=10)
    finally:
        server.close()
    assert received == [b"sarif\n"]
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_a_symlink_is_followed_its_target_replaced_and_the_link_kept(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    target = reports / "real.sarif"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert _entries(reports) == ["real.sarif"]  # the temporary lived next to the target, and is gone


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "latest.json"
    link.symlink_to("runs/42/evaluation.json")
    write_output(link, "{}")
    assert link.is_symlink()
    assert (tmp_path / "runs" / "42" / "evaluation.json").read_text() == "{}"


def test_dash_is_standard_output(capfd: pytest.CaptureFixture[str]) -> None:
    write_output("-", "one\n")
    with text_output("-") as out:
        out.write("two\n")
    append_output("-", "three\n")
    assert capfd.readouterr().out == "one\ntwo\nthree\n"
    assert not sys.stdout.closed


def test_appending_keeps_what_is_there_and_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "github_output"
    target.write_text("first=1\n")
    link = tmp_path / "GITHUB_OUTPUT"
    link.symlink_to(target)
    append_output(link, "second=2\n")
    assert target.read_text() == "first=1\nsecond=2\n"
    assert link.is_symlink()


def test_a_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is a directory"):
        write_output(tmp_path, "{}")
    with pytest.raises(ReportError, match="is a directory"):
        append_output(tmp_path, "x")


def test_a_folder_that_cannot_be_made_is_one_clear_error_and_the_old_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("file")
    with pytest.raises(ReportError, match=r"cannot write .*not-a-dir/x\.json"):
        write_output(blocked / "x.json", "new")
    write_output(target, "new")
    assert target.read_text() == "new"


def test_the_gate_and_the_reports_have_no_writer_of_their_own() -> None:
    # One writer: the copies that replaced devices and links must not come back.
    root = Path(__file__).resolve().parents[1] / "ci_gate"
    offenders = []
    for source in root.rglob("*.py"):
        text = source.read_text("utf-8")
        if source.name != "fileio.py" and "os.replace(" in text and source.parent.name in ("ci_gate", "reports",
                                                                                         "publish", "analyze"):
            offenders.append(str(source.relative_to(root)))
    assert offenders == []

