"""Which data a script read: a path the user gave wins, then listed directories, then the
largest file; sizes and file counts are the tree's."""

from __future__ import annotations

import os

from advisor.profiler.datafiles import data_source


def tree(root, files):
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)


def test_path_given_as_argument_wins(tmp_path):
    tree(tmp_path, {"data/imgs/cat/1.png": 10, "data/imgs/dog/2.png": 20, "conf.yaml": 5})
    seen = {"reads": [str(tmp_path / "data/imgs/cat/1.png"), str(tmp_path / "conf.yaml")],
            "listed": [str(tmp_path / "data/imgs/cat")], "worker_dirs": []}
    got = data_source(seen, ["--data-dir=data/imgs", "--lr", "0.1"], str(tmp_path))
    assert got == {"path": "data/imgs", "bytes": 30, "files": 2}


def test_listed_directories_and_worker_reads(tmp_path):
    tree(tmp_path, {"d/a/1.bin": 100, "d/b/2.bin": 50})
    seen = {"reads": [], "listed": [str(tmp_path / "d/a")],
            "worker_dirs": [str(tmp_path / "d/b")]}
    assert data_source(seen, [], str(tmp_path)) == {"path": "d", "bytes": 150, "files": 2}


def test_largest_file_read_outside_the_working_directory(tmp_path):
    tree(tmp_path, {"other/big.npy": 1000, "other/small.txt": 3})
    work = tmp_path / "work"
    work.mkdir()
    seen = {"reads": [str(tmp_path / "other/big.npy"), str(tmp_path / "other/small.txt")],
            "listed": [], "worker_dirs": []}
    got = data_source(seen, [], str(work))
    assert got["bytes"] == 1000 and got["files"] == 1
    assert os.path.basename(got["path"]) == "big.npy"


def test_nothing_seen():
    assert data_source(None, [], "/") is None
    assert data_source({"reads": ["/no/such/file"], "listed": [], "worker_dirs": []}, [],
                       "/") is None
