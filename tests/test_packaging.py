"""The shipped data travels inside the package and is found the same way from anywhere.

The fast tests check the locator (simulator.shipped) and that pyproject.toml declares every
shipped file as package data; the slow one builds the wheel, installs it in a fresh venv and runs
the demo's commands from outside the checkout (scripts/wheel_smoke.sh, also run by CI).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.cli import main
from simulator.catalog import load_catalog
from simulator.errors import ConfigError
from simulator.pool import load_pool
from simulator.scenario import Scenario
from simulator.shipped import (
    catalog_path,
    resolve,
    shipped_names,
    shipped_path,
    shipped_pool_names,
    shipped_scenario_names,
)

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DATA = REPO / "simulator" / "data"


def test_shipped_files_are_inside_the_package() -> None:
    import simulator
    package = Path(simulator.__file__).resolve().parent
    assert catalog_path().resolve() == package / "data" / "gpus.csv"
    assert shipped_pool_names() == ["chtc", "ospool"]
    assert {"chtc_catdog", "daly", "mmc", "whatif_gpulab"} <= set(shipped_scenario_names())
    assert shipped_names("benchmark") == ["gpu_throughput"]
    for name in shipped_pool_names():
        assert shipped_path("pool", name).parent == package / "data" / "pools"
    assert not (REPO / "data").exists(), "shipped data belongs under simulator/data/"


def test_every_shipped_file_is_declared_as_package_data() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["simulator"]
    files = [p.relative_to(REPO / "simulator").as_posix() for p in PACKAGE_DATA.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) >= 9
    undeclared = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert undeclared == [], f"add these to [tool.setuptools.package-data]: {undeclared}"


def test_shipped_name_wins_over_a_same_named_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "chtc").mkdir()
    (tmp_path / "daly").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve("pool", "chtc") == shipped_path("pool", "chtc")
    assert resolve("pool", "CHTC") == shipped_path("pool", "chtc")
    assert load_pool("chtc").name == "chtc"
    assert resolve("scenario", "daly") == shipped_path("scenario", "daly")


def test_a_path_is_a_file_and_a_bare_unknown_name_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "mine.yaml"
    own.write_text(shipped_path("pool", "ospool").read_text().replace("name: ospool", "name: mine"))
    assert resolve("pool", "mine.yaml") == Path("mine.yaml")
    assert load_pool("mine.yaml").name == "mine"
    assert resolve("pool", "sub/chtc") == Path("sub/chtc")        # a slash: a path, not a name
    assert resolve("pool", "chtc.yaml") == Path("chtc.yaml")      # a suffix: a path, not a name
    (tmp_path / "bare").write_text(own.read_text())
    assert resolve("pool", "bare") == Path("bare")                # an existing file, no suffix
    with pytest.raises(ConfigError, match=r"is not a shipped pool \(chtc, ospool\) nor a file"
                       r"\. Did you mean 'chtc'\?") as info:
        resolve("pool", "chtcc")
    assert info.value.field == "pool" and info.value.value == "chtcc"
    with pytest.raises(ConfigError, match="no such file"):
        load_pool("chtc.yaml")                                      # not the shipped one


def test_shipped_path_names_the_valid_choices() -> None:
    with pytest.raises(ConfigError, match=r"is not a shipped scenario .*daly.*Did you mean 'daly'"):
        shipped_path("scenario", "dayl")
    with pytest.raises(ValueError, match="unknown kind"):
        shipped_names("trace")


def test_data_dir_override(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pools").mkdir()
    (tmp_path / "pools" / "lab.yaml").write_text(shipped_path("pool", "ospool").read_text())
    (tmp_path / "gpus.csv").write_text(catalog_path().read_text())
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path))
    assert shipped_pool_names() == ["lab"]
    assert catalog_path() == tmp_path / "gpus.csv"
    assert load_pool("lab").name == "ospool"


def test_commands_take_shipped_names_from_any_directory(tmp_path: Path, monkeypatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "chtc").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["pools", "chtc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "chtc"
    assert main(["simulate", "daly", "-r", "2", "-w", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replications"] == 2
    sc = Scenario.from_yaml(resolve("scenario", "chtc_catdog"))
    assert sc.pool.name == "chtc" and len(load_catalog()) >= 20


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_the_demo_commands(tmp_path: Path) -> None:
    """scripts/wheel_smoke.sh: build, install in a fresh venv, run from outside the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ADVISOR_DATA_DIR")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["bash", str(REPO / "scripts" / "wheel_smoke.sh"), str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "wheel smoke: passed" in proc.stdout
    assert "advisor check" in proc.stderr and "all commands passed" in proc.stderr


def test_every_cited_doc_section_exists() -> None:
    """Messages and comments cite docs/DESIGN.md §N and docs/DOMAIN.md §N: those must exist."""
    import re
    sections = {}
    for doc in ("DESIGN", "DOMAIN"):
        text = (REPO / "docs" / f"{doc}.md").read_text()
        sections[doc] = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M))
    assert {"1", "3.1", "4.2", "4.3"} <= sections["DESIGN"] and len(sections["DOMAIN"]) >= 7
    code = [*REPO.glob("advisor/**/*.py"), *REPO.glob("simulator/**/*.py"),
            *REPO.glob("simulator/data/**/*.yaml")]
    for path in code:                     # code and data cite the docs by their path
        for m in re.finditer(r"\b(DESIGN|DOMAIN)\b", path.read_text()):
            assert m.string[max(0, m.start() - 5):m.start()] == "docs/", \
                f"{path}: {m.string[m.start():m.start() + 12]!r}: cite docs/{m.group(1)}.md"
    cited = 0
    for path in [*code, REPO / "README.md", *REPO.glob("docs/*.md")]:
        pattern = r"(DESIGN|DOMAIN)\.md §(\d+(?:\.\d+)?)(?:-§(\d+))?"
        for doc, first, last in re.findall(pattern, path.read_text()):
            for number in filter(None, (first, last)):
                cited += 1
                assert number in sections[doc], f"{path}: docs/{doc}.md §{number} does not exist"
    assert cited >= 10
