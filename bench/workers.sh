#!/usr/bin/env bash
# Study throughput with 1, 2 and 4 worker processes on one PostgreSQL store (issue: scale out), and whether they agree.
# Starts a throwaway PostgreSQL cluster (Debian's postgresql; as root it runs as the postgres user), runs the same study
# (--parallel 4, one training thread per trial) with W processes: `search --storage` plus W-1 `paretoprune worker`,
# and prints wall time, trials per minute and a hash of the trials' configurations and values (timings left out).
#   usage: bench/workers.sh [TRIALS]   (from the repository root, after `dotnet build src/Cli -c Release`)
set -euo pipefail
trials=${1:-12}
pp="dotnet $(pwd)/src/Cli/bin/Release/net10.0/paretoprune.dll"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/pp-workers-XXXX); chmod 755 "$dir"
as=""; if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; as="runuser -u postgres --"; fi
port=$(( 20000 + RANDOM % 20000 ))
$as "$bin/initdb" -D "$dir/data" -U bench --auth=trust --no-sync >/dev/null
$as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
trap '$as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; rm -rf "$dir"' EXIT
url="postgresql://bench@127.0.0.1:$port/postgres"
echo "| worker processes | wall time | trials per minute | trials' configurations and values (hash) |"
echo "| ---: | ---: | ---: | --- |"
for w in 1 2 4; do
  study="w$w"; start=$(date +%s.%N)
  $pp search models/simplecnn-fashion-mnist.onnx --data fashion-mnist-sample --validation-limit 500 --recalibration-batches 5 --batch-size 32 \
      --screening-steps 200 --promote 4 --promotion-steps 200 --final 2 --final-max-steps-per-epoch 200 --threads 1 --parallel 4 \
      -n "$trials" --sampler bo --storage "$url" --study "$study" -o "$dir/$study-0" > "$dir/$study-0.log" 2>&1 &
  pids=($!)
  sleep 2
  for i in $(seq 1 $((w - 1))); do
    $pp worker --storage "$url" --study "$study" -o "$dir/$study-$i" > "$dir/$study-$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  hash=$(psql -h 127.0.0.1 -p "$port" -U bench postgres -At -c \
    "select md5(string_agg(t.kept || regexp_replace(regexp_replace(t.stages, '\"Seconds\":\{[^}]*\}', '', 'g'), '\"TotalSeconds\":[0-9.eE+-]+', '', 'g'), '|' order by t.number)) from paretoprune_trials t join paretoprune_studies s on s.id = t.study where s.name = '$study'")
  printf "| %d | %.1f s | %.1f | %s |\n" "$w" "$wall" "$(echo "$trials * 60 / $wall" | bc -l)" "$hash"
done
