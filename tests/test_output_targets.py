"""Outputs never clobber what is not a regular file: a FIFO, a device node, a socket, a folder or a
symbolic link given as an output is refused before the work with one line (exit 2) and left as it
was; ``scan --report -`` writes the report to stdout. The targets are made here."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from vidshield.cli import main
from vidshield.errors import OutputError
from vidshield.utils import atomic_write_bytes, check_writable


def _targets(tmp_path):
    """name -> a path of that kind, made in ``tmp_path`` (device and socket where allowed)."""
    made = {}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    made["FIFO"] = fifo
    (tmp_path / "real.json").write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real.json")
    made["symbolic link"] = link
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    made["symbolic link "] = dangling
    (tmp_path / "folder").mkdir()
    made["folder"] = tmp_path / "folder"
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made["device"] = device
    except (PermissionError, OSError):
        pass
    sock_path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
    made["socket"] = sock_path
    return made


def _unchanged(path, before):
    st = path.lstat()
    return stat.S_IFMT(st.st_mode) == stat.S_IFMT(before.st_mode) and st.st_ino == before.st_ino


def test_atomic_writes_refuse_every_target_that_is_not_a_regular_file(tmp_path):
    for kind, path in _targets(tmp_path).items():
        before = path.lstat()
        for write in (lambda p: check_writable(p), lambda p: atomic_write_bytes(p, b"x")):
            with pytest.raises(
                OutputError, match="cannot write .*: it is (a symbolic link|a folder|a FIFO|a device|a socket)"
            ):
                write(path)
        assert _unchanged(path, before), kind
    assert (tmp_path / "real.json").read_text() == "keep" and not (tmp_path / "nowhere.json").exists()
    regular = tmp_path / "r.bin"
    regular.write_bytes(b"old")
    atomic_write_bytes(regular, b"new")
    assert regular.read_bytes() == b"new"


def test_scan_refuses_such_a_report_or_plot_before_the_work_and_writes_report_dash_to_stdout(
    tmp_path, capsys, lossless_video_file
):
    targets = _targets(tmp_path)
    args = ["scan", str(lossless_video_file), "--model", "synthetic-lrcn"]
    for kind, path in targets.items():
        before = path.lstat()
        for option in ("--report", "--plot"):
            other = "--plot" if option == "--report" else "--report"
            assert main([*args, option, str(path), other, str(tmp_path / f"o{option}")]) == 2, kind
            err = capsys.readouterr().err.splitlines()
            if kind == "folder":  # click's own check of the option: a usage error
                assert "is a directory" in err[-1]
            else:
                assert len(err) == 1 and err[0].startswith("error: cannot write "), err
            assert _unchanged(path, before), kind
    assert main([*args, "--report", "-", "--plot", str(tmp_path / "p.png")]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["report"] == "-" and report["verdict"] in ("clean", "sparse", "dense")
    assert "label before defense" in captured.err and not (tmp_path / "-").exists()
