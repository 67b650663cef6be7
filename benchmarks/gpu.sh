#!/usr/bin/env bash
# Benchmark suite for a CUDA GPU machine that has JAX with CUDA preinstalled and no network.
# Runs ibjax from the source tree (no install), writes one JSON line per size and a markdown
# table under ${OUT:-benchmarks/results/gpu}. Usage, from the repository root:
#   bash benchmarks/gpu.sh                 # 1, 10, 100, 1000 seeds, paper config, 8000 epochs
#   SEEDS="1 10" EPOCHS=200 bash benchmarks/gpu.sh   # a quick check (PYTHON=... to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  > "$out/gpu.txt" 2>/dev/null || echo "no nvidia-smi" > "$out/gpu.txt"
"$py" -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/jax.txt"
for seeds in ${SEEDS:-1 10 100 1000}; do
  "$py" benchmarks/throughput.py --seeds "$seeds" --epochs "${EPOCHS:-8000}" \
    | tail -n 1 | tee -a "$out/throughput.jsonl"
done
"$py" benchmarks/baseline.py --seeds 1 --baseline-seeds 1 --epochs "${BASELINE_EPOCHS:-1000}" \
  --json "$out/baseline.json" | tee "$out/baseline.txt"
"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
gpu = open(f"{out}/gpu.txt").read().strip()
rows = [json.loads(line) for line in open(f"{out}/throughput.jsonl")]
lines = [f"GPU: {gpu}", "", "| seeds | epochs | compile s | run s | seed-epochs/s |",
         "| ---: | ---: | ---: | ---: | ---: |"]
lines += [f"| {r['seeds']} | {r['epochs']} | {r['compile_s']} | {r['run_s']} | "
          f"{r['seed_epochs_per_s']} |" for r in rows]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
