#!/usr/bin/env bash
# The main job on a shipped example: profile → fit → recommendation → submit file.
# Run by `make demo` (which installs everything first). Writes into ${1:-out}/.
set -euo pipefail
OUT=${1:-out}
ADVISOR=.venv/bin/advisor
mkdir -p "$OUT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "1. Profile the unmodified cat/dog CNN example (3 warm-up + 20 measured optimizer steps)"
$ADVISOR profile examples/cnn_catdog.py -o "$OUT/cnn_catdog.json" -- \
    --data-dir "$OUT/catdog-images" --epochs 2

say "2. Predict memory fit and step time on every GPU type of CHTC's pool"
$ADVISOR fit "$OUT/cnn_catdog.json" --pool chtc

say "3. Recommend the request for a 30-epoch training, chosen by simulating the pool; write the files"
$ADVISOR recommend "$OUT/cnn_catdog.json" --epochs 30 --pool chtc -o "$OUT/catdog-job"

say "4. Put what the job receives next to the submit file (the data packed with relative paths: run.sh unpacks it in the sandbox)"
tar czf "$OUT/catdog-job/catdog-images.tar.gz" -C "$OUT" catdog-images
cp examples/cnn_catdog.py "$OUT/catdog-job/"

say "5. The submit file and run.sh it wrote, reviewed by advisor check"
cat "$OUT/catdog-job/cnn_catdog.sub"
cat "$OUT/catdog-job/run.sh"
$ADVISOR check "$OUT/catdog-job/cnn_catdog.sub" --pool chtc

say "Done: profile in $OUT/cnn_catdog.json, job files in $OUT/catdog-job/"
