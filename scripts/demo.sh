#!/usr/bin/env bash
# The main job on a shipped example. Run by `make demo` (which installs everything first).
set -euo pipefail
OUT=${1:-out}
ADVISOR=.venv/bin/advisor
mkdir -p "$OUT"
echo "== The CHTC pool the advice is for" >&2
$ADVISOR pools chtc
