"""Probe of the recurrent trainer's non-finite update (baselines/MEMORY.md, "What does not work"):
restores a `--network gru` run's last finite checkpoint, checks that one rollout is finite and that its
replay gives the rollout's own log-probabilities, then runs the updates that follow with
`jax_debug_nans`. Usage: python baselines/results/memory/nonfinite_probe.py RUN_DIR SEED"""

import json
import sys

import jax
import jax.numpy as jnp

from baselines import checkpoints, recurrent, scenarios

out, seed = sys.argv[1], int(sys.argv[2])
config = json.load(open(out + "/config.json"))
env, params = scenarios.make_env(config)
parts = recurrent.build(config, env, params)
abstract = jax.eval_shape(jax.vmap(parts.init), jax.random.split(jax.random.PRNGKey(0), config["num_seeds"]))
runner, update, _ = checkpoints.restore_checkpoint(out, abstract)
r = jax.tree.map(lambda x: x[seed], runner)
print("restored update", update)


@jax.jit
def probe(r):
    _, steps, resets, logp, values, h0 = parts.collect(r)
    _, pi, _ = parts.policy(r.train_state.params, h0, steps.obs, resets, steps.mask)
    legal = jnp.take_along_axis(steps.mask, steps.action[..., None], -1).all()
    return logp.min(), jnp.abs(logp - pi.log_prob(steps.action)).max(), jnp.isfinite(values).all(), legal


for i in range(4):
    low, diff, finite, legal = (float(x) for x in probe(r))
    r_next, info = jax.jit(parts.update)(r)
    losses = {k: float(v) for k, v in info.items() if "loss" in k or k == "entropy"}
    print(
        f"update {update + i + 1}: rollout log-prob min {low:.3f}, replay diff {diff:.1e}, values finite {bool(finite)}, "
        f"actions legal {bool(legal)}; after the update {losses}"
    )
    if not all(map(jnp.isfinite, losses.values())):
        jax.config.update("jax_debug_nans", True)
        parts.update(r)  # raises FloatingPointError where the first NaN appears
    r = r_next
