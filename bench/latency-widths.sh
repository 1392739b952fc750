#!/usr/bin/env bash
# Host latency of the same ResNet-20 pruned structurally (odd widths vs rounded to 8) and unstructurally, measured
# interleaved in two rounds with the measure command's default plan (CI of the median within 2 %, ≤ 10 s).
set -e
cd "$(dirname "$0")/.."
P=src/Cli/bin/Release/net10.0/paretoprune
M=models/resnet20-fashion-mnist.onnx
D=${TMPDIR:-/tmp}/paretoprune-latency-widths; mkdir -p $D
$P prune $M --amount 0.1 --out $D/l1-0.1.onnx >/dev/null
$P prune $M --amount 0.1 --round-to 8 --out $D/l1-0.1-round8.onnx >/dev/null
$P prune $M --amount 0.3 --out $D/l1-0.3.onnx >/dev/null
$P prune $M --amount 0.3 --round-to 8 --out $D/l1-0.3-round8.onnx >/dev/null
$P prune $M --amount 0.5 --out $D/l1-0.5.onnx >/dev/null
$P prune $M --unstructured --amount 0.7 --out $D/magnitude-0.7.onnx >/dev/null
$P prune $M --unstructured --amount 0.9 --out $D/magnitude-0.9.onnx >/dev/null
for round in 1 2; do
  for f in $M $D/l1-0.1.onnx $D/l1-0.1-round8.onnx $D/l1-0.3.onnx $D/l1-0.3-round8.onnx $D/l1-0.5.onnx $D/magnitude-0.7.onnx $D/magnitude-0.9.onnx; do
    $P measure $f --json 2>/dev/null | python3 -c "
import json,sys
j=json.load(sys.stdin)
print('$round', '$(basename $f)', json.dumps(j)[:600])"
  done
done
