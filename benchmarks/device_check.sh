#!/usr/bin/env bash
# The device check (issue 15): environment throughput, compile times, and PPO and self-play training
# throughput on whatever JAX backend this machine has, within about 8 minutes on one GPU.
#
#   benchmarks/device_check.sh [OUT_DIR]        # default: $OUT, else benchmarks/results/device
#   DEVICE_CHECK_SMALL=1 benchmarks/device_check.sh /tmp/dc    # the CPU's small sizes (make device-check)
#   DEVICE_CHECK_PARTS="env" ...                                # a subset of env, train, selfplay
#
# On the lent GPU machine (no gymnax, distrax, ... there; see ../shared/DEVICE.md) the wheels carried in
# .wheels/ are installed first. Every part runs in its own process under `timeout`, writing its rows as
# it measures them, so a part that runs out of time or memory keeps what it measured; the report reads
# the CSVs and prints the summary table last. At most 6 files land in OUT_DIR: env.csv, train.csv,
# device_check.png, summary.md, device_check.log, machine.txt.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results/device}}"
PY="${PYTHON:-python3}"
SMALL="${DEVICE_CHECK_SMALL:-0}"
PARTS="${DEVICE_CHECK_PARTS-env train selfplay}"
for name in $PARTS; do
    case "$name" in env|train|selfplay) ;;
        *) echo "device check: DEVICE_CHECK_PARTS takes env, train, selfplay; got '$name'" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR/env.csv" "$OUT_DIR/train.csv"
LOG="$OUT_DIR/device_check.log"
: > "$LOG"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # idsjax, baselines, benchmarks from this checkout
export PYTHONUNBUFFERED=1

# What the parts import, and the machine in words (machine.txt), in one start-up of Python.
probe() {
    "$PY" - "$OUT_DIR/machine.txt" "$SMALL" <<'PYEOF'
import datetime, subprocess, sys
import gymnax, distrax, gymnasium, optax, flax, matplotlib  # noqa: F401 - what the parts need
import jax, jaxlib
gpu = subprocess.run("nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader",
                     shell=True, capture_output=True, text=True).stdout.strip() or "no nvidia-smi"
with open(sys.argv[1], "w") as f:
    f.write(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}\n"
            f"jax {jax.__version__} jaxlib {jaxlib.__version__}\n{jax.devices()}\n{gpu}\n"
            f"DEVICE_CHECK_SMALL={sys.argv[2]}\n")
PYEOF
}
if ! probe >>"$LOG" 2>&1; then
    if compgen -G ".wheels/*.whl" >/dev/null; then
        echo "installing the carried wheels (.wheels/)" | tee -a "$LOG"
        "$PY" -m pip install -q --no-deps .wheels/*.whl >>"$LOG" 2>&1 || echo "wheel install failed (see log)" | tee -a "$LOG"
    fi
    if ! probe >>"$LOG" 2>&1; then
        echo "device check: gymnax, distrax, gymnasium, optax, flax and matplotlib must import; see $LOG" >&2
        exit 2
    fi
fi

# Seconds per part. The part starts no size its budget cannot take (judged by the last size's cost);
# SLACK on top (start-up, the size in flight) is the hard stop. One GPU: 340 s of parts + 3 x 30 s of
# slack + installs and report stay under 8 minutes. The CPU's small mode compiles for longer than it
# measures, hence its larger slack.
if [ "$SMALL" != "0" ]; then
    FLAG="--small"; B_ENV=60;  B_TRAIN=60;  B_SELF=40; SLACK=90
else
    FLAG="";        B_ENV=130; B_TRAIN=130; B_SELF=80; SLACK=30
fi
for name in $PARTS; do
    case "$name" in env) budget=$B_ENV ;; train) budget=$B_TRAIN ;; selfplay) budget=$B_SELF ;; esac
    echo "== $name (budget ${budget} s)" | tee -a "$LOG"
    timeout --signal=KILL $((budget + SLACK)) "$PY" -m benchmarks.device_check "$name" --out "$OUT_DIR" \
        --budget "$budget" $FLAG >>"$LOG" 2>&1
    rc=$?
    [ $rc -eq 0 ] || echo "   $name ended with status $rc (137: killed at its time limit); its rows so far are kept" | tee -a "$LOG"
done
"$PY" -m benchmarks.device_check report --out "$OUT_DIR" 2>>"$LOG"
