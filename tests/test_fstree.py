"""The one tree walk (advisor.fstree) and the one process-tree kill (advisor.procfs.kill_tree)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.fstree import Walk, newest_mtime, tree_bytes, tree_size
from advisor.procfs import children_map, descendants, kill_tree, process_table


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    (root / "one.bin").write_bytes(b"x" * 100)
    (root / "a" / "b" / "two.bin").write_bytes(b"y" * 30)
    return root


def test_sizes_files_and_folders(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert tree_size(root) == (130, 2, True)
    assert tree_size(root / "one.bin") == (100, 1, True)
    assert tree_bytes(tmp_path / "absent") == 0


def test_links_below_the_root_are_not_followed(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"z" * 10_000)
    (root / "to_dir").symlink_to(outside)
    (root / "to_file").symlink_to(outside / "big.bin")
    (root / "loop").symlink_to(root)
    size = tree_size(root)
    links = sum(os.lstat(root / n).st_size for n in ("to_dir", "to_file", "loop"))
    assert size == (130 + links, 5, True)     # each link counts as itself, never its target


def test_the_root_named_through_a_link_is_measured(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (tmp_path / "via").symlink_to(root)
    assert tree_size(tmp_path / "via") == (130, 2, True)


def test_hard_links_count_once_per_name(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.link(root / "one.bin", root / "again.bin")
    assert tree_size(root).bytes == 230


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folders_are_skipped(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "a").chmod(0)
    try:
        assert tree_size(root) == (100, 1, True)
    finally:
        (root / "a").chmod(0o755)


def test_entry_limit_stops_the_walk_and_says_so(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    for i in range(10):
        (root / f"f{i}").write_bytes(b"1")
    size = tree_size(root, max_entries=5)
    assert not size.complete and size.files <= 5
    assert tree_size(root).complete


def test_time_limit_stops_the_walk_and_says_so(tmp_path: Path) -> None:
    for i in range(600):
        (tmp_path / f"f{i}").touch()
    walk = Walk(tmp_path, max_seconds=0.0)
    assert len(list(walk)) < 600 and not walk.complete


def test_newest_mtime(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.utime(root / "a" / "b" / "two.bin", (5_000_000_000, 5_000_000_000))
    assert newest_mtime(root) == 5_000_000_000
    (tmp_path / "empty").mkdir()
    assert newest_mtime(tmp_path / "empty") is None


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux /proc")


def _state(pid: int) -> str | None:
    return next((r.state for r in process_table() if r.pid == pid), None)


@needs_proc
def test_kill_tree_kills_and_reaps_what_was_started(tmp_path: Path) -> None:
    script = ("import subprocess, sys, time\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print(p.pid, flush=True)\n"
              "time.sleep(60)\n")
    before = set(descendants(os.getpid(), children_map(zombies=True)))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    assert kill_tree(os.getpid(), spare=before) == []
    assert _state(proc.pid) is None             # killed and reaped: no zombie of ours left
    assert _state(grandchild) in (None, "Z")    # its own parent's zombie, if anything
    proc.stdout.close()


@needs_proc
def test_kill_tree_spares_and_never_steals_an_exit_status() -> None:
    done = subprocess.Popen(["sh", "-c", "exit 7"])
    for _ in range(500):                         # wait until it is a zombie, not reaped
        if _state(done.pid) == "Z":
            break
        time.sleep(0.01)
    kept = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    before = set(descendants(os.getpid(), children_map(zombies=True)))
    try:
        assert done.pid in before and kept.pid in before
        assert kill_tree(os.getpid(), spare=before) == []
        assert kept.poll() is None
        assert done.wait(timeout=5) == 7
    finally:
        kept.kill()
        kept.wait()
