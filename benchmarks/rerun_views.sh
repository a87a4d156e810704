#!/usr/bin/env bash
# A rerun with nothing new to compute, twice each way, back to back: with the run's teaching views
# kept (facebench now) and with them deleted first, so that they are computed again (as every rerun
# did before they were kept). 600 synthetic faces, the quick preset.
#
#     bash benchmarks/rerun_views.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-/tmp/facebench-rerun-views}
rm -rf "$D"; mkdir -p "$D"
.venv/bin/facebench synth --out "$D/faces" --n 600 --seed 0 --size 64 >/dev/null
.venv/bin/facebench run --data "$D/faces" --preset quick --out "$D/run" -q >/dev/null 2>&1
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for i in 1 2; do
  /usr/bin/time -f "views kept: %e s wall" .venv/bin/facebench run --config "$D/run/config.toml" -q >/dev/null
  rm -rf "$D/run/views"
  /usr/bin/time -f "views computed again: %e s wall" .venv/bin/facebench run --config "$D/run/config.toml" -q >/dev/null
done
echo "reruns that kept the views (run.log): $(grep -c 'teaching views are those of the same' "$D/run/run.log")"
