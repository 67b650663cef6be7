#!/usr/bin/env bash
# The benchmark suite for a CUDA GPU machine that has JAX with CUDA preinstalled and no network.
# Runs ibjax from the source tree (no install) and writes, flat under ${OUT:-benchmarks/results/gpu}:
#   gpu.txt, log.txt (everything printed), throughput.jsonl and table.md (paper configuration,
#   8000 epochs, 274 snapshots), estimators.json (cost per estimator), gpu.nc and cpu.nc (the
#   same 8 seeds on the GPU and on the host CPU; compare with benchmarks/across_devices.py).
# Each step has its own time limit, so one slow step cannot eat the others' results.
# From the repository root:
#   bash benchmarks/gpu.sh
#   SEEDS="2" EPOCHS=20 EST_SEEDS=2 ACROSS=0 BASELINE_EPOCHS=20 bash benchmarks/gpu.sh  # quick
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
log="$out/log.txt"
step() {  # step LIMIT_S COMMAND...: run with a time limit, output to the log and the screen
  local limit=$1
  shift
  echo "== $* (limit ${limit} s)" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  echo "== took $((SECONDS - start)) s, exit ${PIPESTATUS[0]}" | tee -a "$log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  > "$out/gpu.txt" 2>/dev/null || echo "no nvidia-smi" > "$out/gpu.txt"
cat "$out/gpu.txt" | tee -a "$log"
step 60 "$py" -c "import jax; print(jax.__version__, jax.devices())"
for seeds in ${SEEDS:-1000 100}; do
  step "${STEP_S:-150}" "$py" benchmarks/throughput.py --seeds "$seeds" --epochs "${EPOCHS:-8000}"
done
step 150 "$py" benchmarks/estimators.py --seeds "${EST_SEEDS:-100}" --repeats 2 \
  --memory-seeds 0 --json "$out/estimators.json"
if [ "${ACROSS:-1}" = 1 ]; then
  step 120 "$py" benchmarks/across_devices.py run --out "$out/gpu.nc"
  JAX_PLATFORMS=cpu step 150 "$py" benchmarks/across_devices.py run --out "$out/cpu.nc"
  step 60 "$py" benchmarks/across_devices.py compare "$out/cpu.nc" "$out/gpu.nc"
fi
for seeds in ${MORE_SEEDS:-10 1}; do
  step "${STEP_S:-150}" "$py" benchmarks/throughput.py --seeds "$seeds" --epochs "${EPOCHS:-8000}"
done
step 150 "$py" benchmarks/baseline.py --seeds 1 --baseline-seeds 1 \
  --epochs "${BASELINE_EPOCHS:-1000}"
grep '^{"seeds"' "$log" > "$out/throughput.jsonl"
"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
gpu = open(f"{out}/gpu.txt").read().strip()
rows = [json.loads(line) for line in open(f"{out}/throughput.jsonl")]
rows = [r for r in rows if "epochs" in r]  # not the baseline's line
lines = [f"GPU: {gpu}", "", "| seeds | epochs | compile s | run s | seed-epochs/s |",
         "| ---: | ---: | ---: | ---: | ---: |"]
lines += [f"| {r['seeds']} | {r['epochs']} | {r['compile_s']} | {r['run_s']} | "
          f"{r['seed_epochs_per_s']} |" for r in sorted(rows, key=lambda r: r["seeds"])]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
