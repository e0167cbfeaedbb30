#!/usr/bin/env bash
# The memory experiment (baselines/MEMORY.md): PPO with memory (--network gru) against two controls
# without it, at the same budget, seeds and hyperparameters: the MLP (--network mlp) and the same GRU
# network with its memory wiped before every step (--network gru --memoryless-gru), on v19's defender
# (vs attack_maximal) and attacker (vs defend_minimal), v20's defender, and v9's defender (fixed values and
# start: the check of why); then the paired comparisons (ENVS="ID ..." runs other ids).
# Resumable: a run that holds a checkpoint is continued with --resume, a finished one is skipped.
# Usage: baselines/results/memory/run.sh [RUNS_DIR]; STEPS=N sets another budget per seed (its
# comparisons are written with a .N suffix beside the 500k ones); EXTRA="FLAGS" adds ppo flags to every
# arm, TAG=.NAME names their comparisons.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${1:-runs/memory}
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-500000}
TAG=${TAG:-$([ "$STEPS" = 500000 ] || echo ".$STEPS")}
COMMON=(--total-timesteps "$STEPS" --num-envs 64 --num-steps 32 --num-minibatches 4 --num-seeds 5
        --seed 0 --hidden 64 --eval-episodes 2000 --checkpoint-every 100000 --chunks 10 --no-progress ${EXTRA:-})
for env in ${ENVS:-idsgame-maximal_attack-v19 idsgame-minimal_defense-v19 idsgame-maximal_attack-v20 idsgame-maximal_attack-v9}; do
  for arm in mlp gru gru_memoryless; do
    out="$RUNS/$env/$arm"
    case $arm in
      mlp) flags=(--network mlp) ;;
      gru) flags=(--network gru) ;;
      gru_memoryless) flags=(--network gru --memoryless-gru) ;;
    esac
    if [ -f "$out/eval.json" ]; then echo "done: $out"; continue; fi
    if [ -d "$out/checkpoints" ]; then
      $PY -m baselines.ppo --resume --output-dir "$out" --no-progress > "$out.json"
    else
      mkdir -p "$(dirname "$out")"
      $PY -m baselines.ppo --env "$env" "${flags[@]}" "${COMMON[@]}" --output-dir "$out" --overwrite > "$out.json"
    fi
  done
  $PY -m baselines.recurrent --compare "$RUNS/$env/mlp" "$RUNS/$env/gru" --out "baselines/results/memory/$env.mlp_vs_gru$TAG.json" > /dev/null
  $PY -m baselines.recurrent --compare "$RUNS/$env/gru_memoryless" "$RUNS/$env/gru" \
    --out "baselines/results/memory/$env.gru_memoryless_vs_gru$TAG.json" > /dev/null
done
