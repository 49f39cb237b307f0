"""Where the shipped data is: the one place that locates the files installed with the package.

The GPU catalog, the pools, the scenarios and the published benchmark data live in
`simulator/data/` and are declared as package data, so they travel inside the wheel and are found
with `importlib.resources` wherever the package is installed (never relative to the working
directory or to a checkout):

    simulator/data/gpus.csv                        kind "catalog", name "gpus"
    simulator/data/pools/NAME.yaml                 kind "pool"
    simulator/data/scenarios/NAME.yaml             kind "scenario"
    simulator/data/benchmarks/NAME.csv             kind "benchmark"

`resolve(kind, ref)` turns what a user typed into a file: a shipped name wins over a same-named
file or folder in the working directory (a folder called `chtc` must not break `--pool chtc`);
a reference with a slash or a file suffix is always a path. The environment variable
ADVISOR_DATA_DIR points the whole lookup at another folder with the same layout.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from simulator.errors import ConfigError, nearest

# kind -> (sub-folder of the data folder, file suffix)
KINDS: dict[str, tuple[str, str]] = {
    "catalog": ("", ".csv"),
    "pool": ("pools", ".yaml"),
    "scenario": ("scenarios", ".yaml"),
    "benchmark": ("benchmarks", ".csv"),
}
CATALOG = "gpus"                                # the shipped catalog: data/gpus.csv
PATH_SUFFIXES = (".yaml", ".yml", ".csv", ".json")
OVERRIDE_ENV = "ADVISOR_DATA_DIR"

# Files extracted from a zipped install live until the interpreter exits.
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def data_root() -> Traversable:
    """The shipped data folder inside the installed package (or ADVISOR_DATA_DIR when set)."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        return Path(override)
    return resources.files("simulator") / "data"


def _folder(kind: str) -> Traversable:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of shipped data {kind!r}; one of {', '.join(KINDS)}")
    sub = KINDS[kind][0]
    return data_root() / sub if sub else data_root()


def shipped_names(kind: str) -> list[str]:
    """The names (file stems) of the shipped files of one kind, sorted."""
    folder = _folder(kind)
    suffix = KINDS[kind][1]
    if not folder.is_dir():
        return []
    return sorted(f.name[: -len(suffix)] for f in folder.iterdir()
                  if f.is_file() and f.name.endswith(suffix))


def shipped_pool_names() -> list[str]:
    """The shipped pools (`chtc`, `ospool`)."""
    return shipped_names("pool")


def shipped_scenario_names() -> list[str]:
    """The shipped scenarios (`daly`, `mmc`, ...)."""
    return shipped_names("scenario")


def shipped_path(kind: str, name: str) -> Path:
    """The file system path of one shipped file (e.g. `shipped_path("pool", "chtc")`)."""
    names = shipped_names(kind)
    key = name.lower()
    if key not in names:
        raise ConfigError(kind, name, f"is not a shipped {kind} ({', '.join(names) or 'none'}).",
                          f"give one of: {', '.join(names)}." if names else
                          "reinstall the package: its data files are missing.",
                          suggestions=nearest(name, names))
    res = _folder(kind) / f"{key}{KINDS[kind][1]}"
    if isinstance(res, Path):
        return res
    return _EXTRACTED.enter_context(resources.as_file(res))  # a zipped install: a temporary copy


def catalog_path() -> Path:
    """The shipped GPU catalog CSV."""
    return shipped_path("catalog", CATALOG)


def looks_like_path(text: str) -> bool:
    """A reference with a directory separator or a file suffix names a file, never a shipped name."""
    return "/" in text or os.sep in text or text.lower().endswith(PATH_SUFFIXES)


def resolve(kind: str, ref: str | Path) -> Path:
    """The file that a user's reference names: a shipped name first, then a path.

    A shipped name wins over a same-named entry of the working directory; a reference with a
    slash or a suffix is a path (it need not exist yet: reading it names the missing file); a bare
    name that is neither shipped nor an existing file is a ConfigError listing the shipped names.
    """
    text = str(ref)
    if looks_like_path(text):
        return Path(text)
    names = shipped_names(kind)
    if text.lower() in names:
        return shipped_path(kind, text)
    path = Path(text)
    if path.is_file():
        return path
    form = "YAML" if KINDS[kind][1] == ".yaml" else KINDS[kind][1][1:].upper()
    raise ConfigError(kind, text, f"is not a shipped {kind} ({', '.join(names) or 'none'}) nor a file.",
                      f"give a shipped {kind} name or the path of a {kind} {form} file.",
                      suggestions=nearest(text, names))
