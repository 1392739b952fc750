#!/usr/bin/env python3
"""Markdown tables of the allocation matrix (bench/allocation/results.jsonl): one row per model, bound and arm (means over
the seeds recorded), then each arm against uniform pruning on the seeds both have. Standard library only.
usage: bench/allocation/summarise.py [RESULTS]"""
import json, sys, statistics
from collections import defaultdict

path = sys.argv[1] if len(sys.argv) > 1 else "bench/allocation/results.jsonl"
cells = [json.loads(l) for l in open(path) if l.strip()]
order = ["uniform", "bo-v1", "bo", "bo-focus", "bo-focus1", "bo-tied", "bo-stream", "bo-trust", "bo-sens", "bo-prior", "bo-top", "bo-tuned", "random", "greedy", "uniform+compute", "uniform+search", "uniform-long", "bo-long", "bo-front", "uniform-front"]
# An arm against the uniform baseline fine-tuned as it was (bo-long's final stage is three times as long), or the search
# as shipped against uniform pruning given the same training steps (the user's real alternative).
equal_compute = "bo-focus1 at equal compute"
reference = lambda arm: {"bo-long": "uniform-long", equal_compute: "uniform+search"}.get(arm, "uniform")
arm_of = lambda arm: "bo-focus1" if arm == equal_compute else arm
name = lambda m: m.split("/")[-1].replace(".onnx", "").replace("-fashion-mnist", "")
groups = defaultdict(list)
for c in cells:
    groups[(name(c["Model"]), c["Bound"], c["Budget"], c["Arm"])].append(c)

print("| model | bound | arm | seeds | mean test | min–max | bound kept | training steps | wall time |")
print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
keys = sorted(groups, key=lambda k: (k[0], k[1], k[2], order.index(k[3]) if k[3] in order else 99))
for k in keys:
    g = groups[k]
    tests = [c["Test"] for c in g]
    wall = statistics.mean(c["WallSeconds"] for c in g)
    print(f"| {k[0]} | {k[1]} ≤ {k[2]:.0%} | {k[3]} | {len(g)} | {statistics.mean(tests):.2%} | {min(tests):.2%}–{max(tests):.2%} | "
          f"{statistics.mean(c['BoundKept'] for c in g):.1%} | {statistics.mean(c['TrainingSteps'] for c in g):.0f} | {int(wall // 60)}:{int(wall % 60):02d} |")

print()
print("| model | bound | arm − uniform (same seeds) | seeds | uniform's seed spread |")
print("| --- | --- | --- | ---: | ---: |")
for (model, bound, budget) in sorted({k[:3] for k in groups}):
    if not groups.get((model, bound, budget, "uniform")):
        continue
    uniform = {c["Seed"]: c["Test"] for c in groups.get((model, bound, budget, "uniform"), [])}
    spread = max(uniform.values()) - min(uniform.values()) if len(uniform) > 1 else None
    for arm in [a for a in order[1:-2] if a not in ("uniform-long", "uniform+search")] + [equal_compute]:
        base = {c["Seed"]: c["Test"] for c in groups.get((model, bound, budget, reference(arm)), [])}
        arm_cells = {c["Seed"]: c["Test"] for c in groups.get((model, bound, budget, arm_of(arm)), [])}
        seeds = sorted(set(arm_cells) & set(base))
        if not seeds:
            continue
        diff = statistics.mean(arm_cells[s] - base[s] for s in seeds)
        label = arm if reference(arm) == "uniform" else f"{arm} − {reference(arm)}"
        print(f"| {model} | {bound} ≤ {budget:.0%} | {label}: {100 * diff:+.2f} points | {len(seeds)} | "
              f"{'' if spread is None else f'{100 * spread:.2f} points'} |")

fronts = [k for k in keys if k[3].endswith("-front")]
if fronts:
    print()
    print("| model | bound | front of | seeds | exported models | hypervolume (test accuracy × bounded cost, normalised) | per seed |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for k in fronts:
        g = sorted(groups[k], key=lambda c: c["Seed"])
        volumes = [c["FrontHypervolume"] for c in g]
        per_seed = ", ".join(f"{v:.4f}" for v in volumes)
        print(f"| {k[0]} | {k[1]} ≤ {k[2]:.0%} | {k[3]} | {len(g)} | {statistics.mean(c['FrontSize'] for c in g):.1f} | "
              f"{statistics.mean(volumes):.4f} | {per_seed} |")

# The levers against the search as shipped (bo-focus1) and the greedy baseline, on the seeds both have; and the
# criterion lever: an arm pruned by another channel criterion (ARM@CRITERION) against the same arm by L1.
def margin(model, bound, budget, arm, against):
    a = {c["Seed"]: c for c in groups.get((model, bound, budget, arm), [])}
    b = {c["Seed"]: c for c in groups.get((model, bound, budget, against), [])}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return (statistics.mean(a[s]["Test"] - b[s]["Test"] for s in seeds), len(seeds),
            statistics.mean(a[s]["TrainingSteps"] for s in seeds), statistics.mean(b[s]["TrainingSteps"] for s in seeds))

rows = []
for (model, bound, budget, arm) in keys:
    if arm in ("bo-tied", "bo-stream", "bo-trust", "bo-sens", "bo-prior", "bo-top", "bo-tuned"):
        for against in ("bo-focus1", "greedy"):
            m = margin(model, bound, budget, arm, against)
            if m:
                rows.append(f"| {model} | {bound} ≤ {budget:.0%} | {arm} − {against} | {100 * m[0]:+.2f} points | {m[1]} | {m[2]:.0f} against {m[3]:.0f} |")
    elif "@" in arm:
        m = margin(model, bound, budget, arm, arm.split("@")[0])
        if m:
            rows.append(f"| {model} | {bound} ≤ {budget:.0%} | {arm} − {arm.split('@')[0]} (L1) | {100 * m[0]:+.2f} points | {m[1]} | {m[2]:.0f} against {m[3]:.0f} |")
if rows:
    print()
    print("| model | bound | lever | test accuracy | seeds | training steps |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    print("\n".join(rows))
