#!/usr/bin/env bash
# Install the project the way users do and run the demo's commands from outside the checkout.
#
#   bash scripts/wheel_smoke.sh [WORKDIR]
#
# 1. builds the wheel from a copy of the checkout (tracked and untracked, not ignored, files:
#    nothing stale from an earlier in-tree build/ can slip into it) and checks that the shipped
#    data is inside it;
# 2. installs it in a fresh virtual environment;
# 3. runs, from WORKDIR/run (outside the checkout, beside a folder called `chtc` that must not
#    shadow the shipped pool): advisor gpus, pools chtc, assess, simulate on a shipped scenario by
#    name, profile on an example script, fit, and check on an example submit file.
#
# The wheel's dependencies (torch, htcondor, dask, ...) come from the project's environment
# (DEPS=venv, the default: a .pth file in the fresh venv points at its site-packages, the wheel
# goes in with --no-deps, `pip check` then verifies the wheel's declared requirements against
# them), because installing them from the package index takes about 6 minutes here. DEPS=index
# resolves everything from the index, as a user's `pip install` does (torch as in the project's
# environment). Either way `advisor` and `simulator` must be imported from the fresh venv: the
# script fails if they come from the checkout.
#
# Environment: PYTHON (default: .venv/bin/python of the checkout), DEPS (venv | index).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
DEPS=${DEPS:-venv}
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/wheel-smoke.XXXXXX")}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$REPO"/*) echo "wheel smoke: WORKDIR must be outside the checkout ($WORK)" >&2; exit 2;; esac
case "$DEPS" in venv|index) ;; *) echo "wheel smoke: DEPS=$DEPS: use venv or index" >&2; exit 2;; esac
unset PYTHONPATH ADVISOR_DATA_DIR
export PIP_DISABLE_PIP_VERSION_CHECK=1 MPLBACKEND=Agg
start=$SECONDS
step() { printf 'wheel smoke [%3ds]: %s\n' "$((SECONDS - start))" "$*" >&2; }

LOGS="$WORK/logs"
mkdir -p "$LOGS"
run() {  # run NAME CMD...: quiet on success, the command's output on failure
  local name=$1; shift
  if ! "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"; then
    echo "wheel smoke: FAILED: $*" >&2
    tail -n 40 "$LOGS/$name.out" "$LOGS/$name.err" >&2
    exit 1
  fi
}

step "copying the checkout to $WORK/src"
rm -rf "$WORK/src" "$WORK/dist" "$WORK/venv" "$WORK/run"
mkdir -p "$WORK/src"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
     | "$PY" -c 'import os, sys; sys.stdout.write("".join(p + "\0" for p in sys.stdin.read().split("\0") if p and os.path.isfile(p)))' \
     | tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
else
  (cd "$REPO" && tar --exclude=./.venv --exclude=./build --exclude=./dist -cf - .) | tar -C "$WORK/src" -xf -
fi

step "building the wheel"
run build "$PY" -m pip wheel --no-deps -q -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/*.whl)
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["simulator/data/gpus.csv", "simulator/data/pools/chtc.yaml", "simulator/data/pools/ospool.yaml",
        "simulator/data/scenarios/daly.yaml", "simulator/data/benchmarks/gpu_throughput.csv",
        "simulator/shipped.py", "advisor/cli.py"]
missing = [n for n in need if n not in names]
if missing:
    sys.exit(f"wheel smoke: the wheel lacks {missing}")
EOF

step "installing it in a fresh venv (dependencies: $DEPS)"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
if [ "$DEPS" = venv ]; then
  SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
    | sort -u > "$SITE/_project_dependencies.pth"
  # the venv's own bundled setuptools would shadow the newer one torch requires
  run unbundle "$VPY" -m pip uninstall -q -y setuptools
  run install "$VPY" -m pip install -q --no-deps --no-index "$WHEEL"
  run pipcheck "$VPY" -m pip check
else
  TORCH=$("$PY" -c 'import importlib.metadata as m; print(m.version("torch").split("+")[0])')
  run install "$VPY" -m pip install -q "$WHEEL" "torch==$TORCH"
fi
ADVISOR="$WORK/venv/bin/advisor"

mkdir -p "$WORK/run/chtc"   # a folder named like a shipped pool: the shipped pool must win
cd "$WORK/run"
"$VPY" - "$WORK/venv" "$REPO" <<'EOF'
import sys
from pathlib import Path
import advisor, simulator
from simulator.shipped import catalog_path, shipped_pool_names
venv, repo = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
for mod in (advisor, simulator):
    where = Path(mod.__file__).resolve()
    if venv not in where.parents:
        sys.exit(f"wheel smoke: {mod.__name__} imported from {where}, not from the fresh venv")
if repo in catalog_path().resolve().parents or "chtc" not in shipped_pool_names():
    sys.exit(f"wheel smoke: shipped data found at {catalog_path()}, pools {shipped_pool_names()}")
EOF

step "advisor gpus"
run gpus "$ADVISOR" gpus --json
step "advisor pools chtc (beside a folder called chtc)"
run pools "$ADVISOR" pools chtc --json
"$VPY" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["name"] == "chtc", d' "$LOGS/pools.out"
step "advisor assess examples/workloads/4_catdog.yaml"
run assess "$ADVISOR" assess "$REPO/examples/workloads/4_catdog.yaml" --json
step "advisor simulate daly (a shipped scenario by name)"
run simulate "$ADVISOR" simulate daly --replications 2 --workers 0 --json
step "advisor profile examples/mlp_tabular.py (a small network, 3 measured steps)"
run profile "$ADVISOR" profile --steps 3 --warmup 1 -o "$WORK/run/mlp.json" \
  "$REPO/examples/mlp_tabular.py" -- --data-dir tabular --rows 512 --hidden 32 --layers 2
step "advisor fit mlp.json --pool chtc"
run fit "$ADVISOR" fit "$WORK/run/mlp.json" --pool chtc --json
step "advisor check examples/submit/good.sub"
run check "$ADVISOR" check "$REPO/examples/submit/good.sub" --pool chtc
step "all commands passed from $WORK/run (logs in $LOGS)"
echo "wheel smoke: passed in $((SECONDS - start)) s"
