#!/bin/bash
# One standard trial on the 5k subset with the commit before oneDAL and with this checkout, back to
# back, each with its own fresh cache directory warmed by the same decode (64 px gray and RGB), so
# that both compute their features. This checkout runs twice: first with dlib's descriptors (and their
# 160 px faces) already in its cache, copied from the user cache, then with a bare cache, computing
# them (about 13 ms a face since the network runs in TensorFlow; 100 ms with dlib's own runner). Wall time from /usr/bin/time and each run's
# timings.csv / run.json; the load average before each run is printed.
# Usage: bash benchmarks/standard_before_after.sh [COMMIT] [OUT] [cached]   (default 0dce9e6, /tmp/sba)
# With a third argument "cached", the run that computes the descriptors is left out (they are computed
# once per machine; the first two runs are the comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
OLD_COMMIT=${1:-0dce9e6}
OUT=${2:-/tmp/sba}
ONLY_CACHED=${3:-}
OLD=/tmp/facebench-old-$OLD_COMMIT
DATA=${FACEBENCH_UTKFACE:-$(dirname "$ROOT")/shared/data/utkface-5k}
USER_CACHE=$("$PY" -c "from facebench.data.cache import default_cache_dir; print(default_cache_dir())")
[ -d "$OLD" ] || git worktree add -f "$OLD" "$OLD_COMMIT" -q
rm -rf "$OUT" && mkdir -p "$OUT"
OLD_MAIN="import sys; sys.path.insert(0, '$OLD'); import facebench; assert facebench.__file__.startswith('$OLD'); from facebench.cli import main; sys.exit(main(sys.argv[1:]))"
WARM="import sys
if sys.argv[2]: sys.path.insert(0, sys.argv[2])
import facebench; print('warming with', facebench.__file__)
from facebench.data import decode, load_dataset; t = load_dataset(sys.argv[1]).table
for color in ('gray', 'rgb'): decode(t, size=64, color=color)"

warm() {  # $1: cache directory, $2: the older checkout whose decode fills it ("": this one)
    rm -rf "$1" && mkdir -p "$1"
    (cd /tmp && FACEBENCH_CACHE=$1 "$PY" -c "$WARM" "$DATA" "$2")
}
trial() {  # $1: name, $2: cache, then the command
    local name=$1 cache=$2
    shift 2
    echo "$name: load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"
    FACEBENCH_CACHE=$cache /usr/bin/time -f "$name: %e s wall, %U s user, %S s system, %M KB peak" "$@" \
        run --data "$DATA" --preset standard --set trials=1 --out "$OUT/$name" -q
}

warm "$OUT/cache-old" "$OLD"
warm "$OUT/cache-cached" ""
mkdir -p "$OUT/cache-cached/embeddings"
cp -r "$USER_CACHE/embeddings/." "$OUT/cache-cached/embeddings/"
(cd /tmp && FACEBENCH_CACHE=$OUT/cache-cached "$PY" -c "
import sys; from facebench.data import decode, load_dataset; decode(load_dataset(sys.argv[1]).table, size=160, color='rgb')" "$DATA")
[ "$ONLY_CACHED" = cached ] || warm "$OUT/cache-new" ""

(cd /tmp && trial old "$OUT/cache-old" "$PY" -c "$OLD_MAIN")
trial new-descriptors-cached "$OUT/cache-cached" "$PY" -m facebench.cli
[ "$ONLY_CACHED" = cached ] || trial new-descriptors-computed "$OUT/cache-new" "$PY" -m facebench.cli
"$PY" - "$OUT" <<'EOF'
import json, sys
from datetime import datetime
from pathlib import Path
import pandas as pd
out = Path(sys.argv[1])
for name in ("old", "new-descriptors-cached", "new-descriptors-computed"):
    if not (out / name / "run.json").exists():
        continue
    run = json.loads((out / name / "run.json").read_text())
    wall = (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()
    t = pd.read_csv(out / name / "timings.csv")
    cols = [c for c in ("decode_s", "features_s", "fit_s", "predict_s") if c in t]
    print(f"\n{name}: run.json started -> finished {wall:.0f} s; timings.csv sums "
          + ", ".join(f"{c} {t[c].sum():.0f}" for c in cols))
    print(t[["model", "fraction", *cols]].round(1).to_string(index=False))
EOF
