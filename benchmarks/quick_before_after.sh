#!/bin/bash
# The quick preset on the 5k subset (classical models only) with an older commit and with this
# checkout, one after the other, and their metrics.csv compared byte for byte. This checkout runs with
# the old split rule and libsvm (data.near_duplicate_bits=-1, svm_backend=libsvm), which is what the
# older commit did. Usage: bash benchmarks/quick_before_after.sh [COMMIT]   (default 0dce9e6)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
OLD_COMMIT=${1:-0dce9e6}
OLD=/tmp/facebench-old
DATA=${FACEBENCH_UTKFACE:-$(dirname "$ROOT")/shared/data/utkface-5k}
COMMON=(--set 'models.cnn=[]' --set n_jobs=2)
[ -d "$OLD" ] || git worktree add -f "$OLD" "$OLD_COMMIT" -q
rm -rf /tmp/qc-old /tmp/qc-new /tmp/qc-warm
export FACEBENCH_CACHE=/tmp/qc-cache
OLD_MAIN="import sys; sys.path.insert(0, '$OLD'); import facebench; assert facebench.__file__.startswith('$OLD'); from facebench.cli import main; sys.exit(main(sys.argv[1:]))"
# warm the decode cache once, so that neither side pays for decoding alone
(cd /tmp && "$PY" -c "$OLD_MAIN" run --data "$DATA" --preset quick --out /tmp/qc-warm -q "${COMMON[@]}" >/dev/null)
(cd /tmp && /usr/bin/time -f "old ($OLD_COMMIT): %e s" "$PY" -c "$OLD_MAIN" run --data "$DATA" --preset quick --out /tmp/qc-old -q "${COMMON[@]}")
(cd "$ROOT" && /usr/bin/time -f "new ($(git rev-parse --short HEAD)): %e s" "$PY" -m facebench.cli run --data "$DATA" --preset quick \
    --out /tmp/qc-new -q "${COMMON[@]}" --set data.near_duplicate_bits=-1 --set svm_backend=libsvm)
cmp /tmp/qc-old/metrics.csv /tmp/qc-new/metrics.csv && echo "metrics.csv identical to the byte"
