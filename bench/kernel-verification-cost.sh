#!/usr/bin/env bash
# What per-signature kernel verification (ConvKernels) costs a demo: the same demo with no verdicts cached (every
# convolution signature of every candidate is checked against ATen before it trains) and then again with the verdicts
# the first run stored (nothing to check), alternately, ROUNDS times. The whole-model kernel decision is cached in both.
# The difference in wall time is the check's real cost, including the oneDNN kernels it builds that training then reuses.
#   usage: bench/kernel-verification-cost.sh [ROUNDS]   (from the repository root, after `dotnet build src/Cli -c Release`)
set -euo pipefail
rounds=${1:-2}
pp="dotnet $(pwd)/src/Cli/bin/Release/net10.0/paretoprune.dll"
dir=$(mktemp -d /tmp/pp-verify-XXXX); trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/cache/paretoprune"
home_cache=${XDG_CACHE_HOME:-$HOME/.cache}/paretoprune/kernels.json
[ -f "$home_cache" ] && cp "$home_cache" "$dir/cache/paretoprune/"
echo "| run | cache | wall time (s) | signatures checked | check time (s) | exported models |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for r in $(seq 1 "$rounds"); do
  for cache in cold warm; do
    [ "$cache" = cold ] && rm -f "$dir/cache/paretoprune/convolutions.json"
    start=$(date +%s.%N)
    XDG_CACHE_HOME="$dir/cache" $pp demo -o "$dir/demo" --json > "$dir/out.json" 2> "$dir/err.log" \
      || { echo "demo failed (exit $?):" >&2; tail -5 "$dir/err.log" >&2; exit 1; }
    end=$(date +%s.%N)
    /usr/bin/python3 - "$dir/out.json" "$r" "$cache" "$start" "$end" "$dir/demo/models" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1])); k = d["kernelChecks"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {float(sys.argv[5]) - float(sys.argv[4]):.1f} | {k['signatures']} | {k['seconds']:.2f} | {len(os.listdir(sys.argv[6]))} |")
PY
  done
done
