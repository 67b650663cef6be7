#!/usr/bin/env bash
# The benchmark suite for a CUDA GPU machine that has JAX with CUDA preinstalled and no network.
# Runs ibjax from the source tree (no install) and writes, flat under
# ${OUT:-benchmarks/results/gpu}: gpu.txt, log.txt (everything printed), fused.jsonl (the
#   fused epoch kernel against XLA), throughput.jsonl and table.md (paper configuration, 8000
#   epochs, 274 snapshots), estimators.json (cost per estimator), gpu.nc and cpu.nc (the same
#   8 seeds on the GPU and on the host CPU; compare with benchmarks/across_devices.py).
# Each step has its own time limit, so one slow step cannot eat the others' results; all steps
# but FUSED, BIG_SEEDS and COMPILE took about 9-10 minutes on one H100 (results/gpu_h100).
# Knobs (environment): SEEDS (default "1000 100", empty skips), PRODUCTS (layer products:
# auto, matmul, broadcast; see benchmarks/throughput.py), KERNELS (training kernels for those
# runs: xla, fused; default xla), ABLATE=1 (benchmarks/epoch_cost.py ablations and device profile at ABLATE_SEEDS, then the
# default variant under other XLA command-buffer settings), TESTS=1 (the GPU-relevant tests,
# or TEST_ARGS; limit TESTS_STEP_S, 180 s),
# EST_SEEDS (0 skips the estimator costs), ACROSS (0 skips), CPU_PRODUCTS (0 skips timing the
# host CPU's training epoch with native against XLA matmul products), MORE_SEEDS (empty
# skips), BASELINE_EPOCHS (0 skips), BIG_SEEDS (default 10000, empty skips; its own limit
# BIG_STEP_S, default 240 s), COMPILE (0 skips benchmarks/compile_time.py on the GPU: program
# parts' lowering and XLA compile times, and `ibjax run` cold and warm, into compile_gpu.json;
# limit COMPILE_STEP_S, 300 s).
# FUSED (0 skips benchmarks/fused_epoch.py, run first: the Pallas epoch kernel against XLA at
# FUSED_SEEDS, default 1000, with FUSED_ARGS, into fused.jsonl; limit FUSED_STEP_S, 300 s).
# throughput.py and fused_epoch.py report the training FLOP/s and the fraction of the GPU's
# float32 peak.
# DEADLINE_S (default 0, none): every step ends by then (seconds after the start), shortened
# to what is left and skipped under 30 s, so the results and table.md are written before the
# device tool's own limit cuts the command. BIG_KERNELS (default xla) as KERNELS, for BIG_SEEDS.
# Each fused kernel variant pays Triton's compile, ~40 s for the paper network on a 2-core CPU
# (benchmarks/triton_compile.py), per seed count and per program that holds it.
# A device session has 15 minutes in all (machine start included), 10 minutes per command: run
# issue 20's measurements as these commands, in this order, the next only while `status`
# leaves time for it (use the device tool's timeout_s = DEADLINE_S + 40):
# 1. item 4, whole runs of the paper configuration (snapshots included): 1000 seeds with XLA
#    and with the fused kernel, then 10,000 seeds with both (about 8-9 minutes at most):
#   DEADLINE_S=540 FUSED=0 SEEDS=1000 KERNELS="xla fused" STEP_S=150 BIG_SEEDS=10000 \
#     BIG_KERNELS="xla fused" BIG_STEP_S=200 COMPILE=0 ABLATE=0 TESTS=0 EST_SEEDS=0 ACROSS=0 \
#     CPU_PRODUCTS=0 MORE_SEEDS= BASELINE_EPOCHS=0 bash benchmarks/gpu.sh
# 2. item 1 on the GPU (where compile time goes) and the GPU checks of init's two programs and
#    of the fused kernel (the real Triton kernel against XLA):
#   DEADLINE_S=400 FUSED=0 SEEDS= BIG_SEEDS= COMPILE_STEP_S=200 ABLATE=0 TESTS=1 \
#     TESTS_STEP_S=150 TEST_ARGS="tests/test_initial_weights.py \
#     tests/test_fused_epoch.py::test_diverging_seeds_are_flagged_at_their_epoch_and_leave_the_others_alone" \
#     EST_SEEDS=0 ACROSS=0 CPU_PRODUCTS=0 MORE_SEEDS= BASELINE_EPOCHS=0 bash benchmarks/gpu.sh
# 3. the fused kernel alone against XLA's training half at 1000 and 10,000 seeds (4 and 8
#    warps per program, 1 and 10 epochs per launch):
#   DEADLINE_S=420 FUSED_STEP_S=420 FUSED_SEEDS="1000 10000" SEEDS= BIG_SEEDS= \
#     FUSED_ARGS="--epochs-per-call 10 --num-warps 4 8 --xla-epochs 1000" COMPILE=0 ABLATE=0 \
#     TESTS=0 EST_SEEDS=0 ACROSS=0 CPU_PRODUCTS=0 MORE_SEEDS= BASELINE_EPOCHS=0 \
#     bash benchmarks/gpu.sh
# Every step of the default suite, with the 10,000 seeds, the fused kernel and the compile
# study, takes ~20-25 minutes in all.
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
deadline=${DEADLINE_S:-0}  # seconds after the start by which every step has ended; 0: none
step() {  # step LIMIT_S COMMAND...: run with a time limit, output to the log and the screen
  local limit=$1
  shift
  if [ "$deadline" != 0 ]; then  # shorten the step to what is left; skip it under 30 s
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 30 ]; then
      echo "== skipped, ${left} s left before DEADLINE_S: $*" | tee -a "$log"
      return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
  fi
  echo "== $* (limit ${limit} s)" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  echo "== took $((SECONDS - start)) s, exit ${PIPESTATUS[0]}" | tee -a "$log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  > "$out/gpu.txt" 2>/dev/null || echo "no nvidia-smi" > "$out/gpu.txt"
cat "$out/gpu.txt" | tee -a "$log"
step 60 "$py" -c "import jax; print(jax.__version__, jax.devices())"
if [ "${FUSED:-1}" = 1 ]; then  # issue 20: the fused Pallas epoch kernel against XLA, first
  # shellcheck disable=SC2086  # FUSED_ARGS is a list of words
  step "${FUSED_STEP_S:-300}" "$py" benchmarks/fused_epoch.py --seeds ${FUSED_SEEDS:-1000} \
    --epochs "${EPOCHS:-8000}" ${FUSED_ARGS:-}
fi
for seeds in ${SEEDS-1000 100}; do
  for product in ${PRODUCTS:-auto}; do
    for kernel in ${KERNELS:-xla}; do
      step "${STEP_S:-150}" "$py" benchmarks/throughput.py --seeds "$seeds" \
        --epochs "${EPOCHS:-8000}" --layer-product "$product" --training-kernel "$kernel"
    done
  done
done
for seeds in ${BIG_SEEDS-10000}; do
  for kernel in ${BIG_KERNELS:-xla}; do
    step "${BIG_STEP_S:-240}" "$py" benchmarks/throughput.py --seeds "$seeds" \
      --epochs "${EPOCHS:-8000}" --training-kernel "$kernel"
  done
done
if [ "${COMPILE:-1}" = 1 ]; then  # where compile time goes on the GPU; cold and warm starts
  JAX_PLATFORMS=${COMPILE_PLATFORM:-cuda} step "${COMPILE_STEP_S:-300}" "$py" \
    benchmarks/compile_time.py \
    --json "$out/compile_gpu.json"
fi
if [ "${ABLATE:-1}" = 1 ]; then
  ablate_seeds=${ABLATE_SEEDS:-1000}
  step 150 "$py" benchmarks/epoch_cost.py --seeds "$ablate_seeds" --epochs 200 \
    --variants default,no-shuffle,sgd,matmul,broadcast,tf32 --profile /tmp/ibjax-gpu-trace
  for flags in "--xla_gpu_enable_command_buffer=" \
      "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"; do
    XLA_FLAGS="$flags" step 60 "$py" benchmarks/epoch_cost.py --seeds "$ablate_seeds" \
      --epochs 200 --variants default
  done
fi
if [ "${TESTS:-1}" = 1 ]; then
  # shellcheck disable=SC2086  # TEST_ARGS is a list of words
  step "${TESTS_STEP_S:-180}" "$py" -m pytest -q -p no:cacheprovider \
    ${TEST_ARGS:-tests/test_permutation.py \
    tests/test_minibatches.py tests/test_binning.py::test_both_bin_index_paths_count_edges_exactly \
    tests/test_train.py::test_products_train_like_matrix_products tests/test_segment.py \
    tests/test_native_products.py tests/test_initial_weights.py \
    tests/test_fused_epoch.py::test_diverging_seeds_are_flagged_at_their_epoch_and_leave_the_others_alone}
fi
if [ "${EST_SEEDS:-100}" != 0 ]; then
  step 150 "$py" benchmarks/estimators.py --seeds "${EST_SEEDS:-100}" --repeats 2 \
    --memory-seeds 0 --json "$out/estimators.json"
fi
if [ "${ACROSS:-1}" = 1 ]; then
  step 120 "$py" benchmarks/across_devices.py run --out "$out/gpu.nc"
  JAX_PLATFORMS=cpu step 150 "$py" benchmarks/across_devices.py run --out "$out/cpu.nc"
  step 60 "$py" benchmarks/across_devices.py compare "$out/cpu.nc" "$out/gpu.nc"
fi
if [ "${CPU_PRODUCTS:-1}" = 1 ]; then
  JAX_PLATFORMS=cpu step 120 "$py" benchmarks/epoch_cost.py --seeds 50 --epochs 200 \
    --variants default,matmul
fi
for seeds in ${MORE_SEEDS-10 1}; do
  step "${STEP_S:-150}" "$py" benchmarks/throughput.py --seeds "$seeds" --epochs "${EPOCHS:-8000}"
done
if [ "${BASELINE_EPOCHS:-1000}" != 0 ]; then
  step 150 "$py" benchmarks/baseline.py --seeds 1 --baseline-seeds 1 \
    --epochs "${BASELINE_EPOCHS:-1000}"
fi
grep '^{"seeds"' "$log" > "$out/throughput.jsonl"
grep '^{"variant"' "$log" > "$out/fused.jsonl"
"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
gpu = open(f"{out}/gpu.txt").read().strip()
rows = [json.loads(line) for line in open(f"{out}/throughput.jsonl")]
rows = [r for r in rows if "epochs" in r]  # not the baseline's line
lines = [f"GPU: {gpu}", "",
         "| seeds | epochs | layer products | compile s | run s | seed-epochs/s | training "
         "TFLOP/s | of fp32 peak |",
         "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
def products(row):  # "broadcast" for "broadcast,broadcast,...", else the list
    names = row.get("layer_products", "matmul").split(",")
    text = names[0] if len(set(names)) == 1 else ",".join(names)
    return text + (" (fused kernel)" if row.get("training_kernel") == "fused" else "")
lines += [f"| {r['seeds']} | {r['epochs']} | {products(r)} | {r['compile_s']} | {r['run_s']} | "
          f"{r['seed_epochs_per_s']} | {r.get('training_tflop_per_s')} | "
          f"{r.get('fraction_of_fp32_peak')} |" for r in sorted(rows, key=lambda r: r["seeds"])]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
