"""Tabular Q-learning (epsilon-greedy, one-step targets), all environments updating one table.

State index: the learner's whole observation, hashed into `table_size` rows. The observation of
these games is small and discrete (the attacker's attack values where visible and its position; the
defender's defense and detection values), and an episode reaches few distinct observations, so a
multiply-shift hash of the int8 values (random odd 32-bit multipliers, top bits kept) is a lookup
table in all but name: with the default 2^14 rows, distinct observations rarely share a row
(raise `--table-size-log2` for larger versions). Unlike a hand-picked key it works for both sides
and every version. The reference's TabularQAgent keys its attacker's table by the attacker's node
alone and gives its defender one row for every state (`--table-key attacker_node`, `--table-key
single`), which generalises across the attack and defense values; with `--tie-break first
--bootstrap all_always --eps-schedule exponential` the rest of its rule follows too (see the
flags' help).

One update: `num_steps` steps in `num_envs` environments (`lax.scan`), each step updating the
table at once for all environments. Environments that update the same (row, id) in one step are
merged (`merge_updates`): their TD errors are averaged, and the cell moves by the step that
`count` sequential updates towards that average would make, `1 - (1 - lr)^count`. Summing them
instead (a plain `.at[].add`) would step by `lr x count`, which diverges once `count > 2 / lr`
(64 games on one start state at lr 0.1); averaging with step `lr` alone would learn `count` times
slower per environment step. Either way the result would depend on `--num-envs`; this way it does
only through sampling. With `--mask-illegal` the target bootstraps over the next state's legal ids
only (illegal ids are never trained, so their values mean nothing).
Exploration decays linearly by default; evaluation is greedy (ties broken uniformly by default).

    python -m baselines.tabular_q --env idsgame-random_defense-v7
"""

from __future__ import annotations

# ruff: noqa: E402
# Tables first, imports after: run as the program, `cli.start` reads the tables below, answers --help,
# refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli

ALGO = "tabular_q"
EVAL_POLICY = "greedy in the Q-table"
ENV_DEFAULTS = {"env": "idsgame-random_defense-v7", "total_timesteps": 300_000, "num_envs": 16}
HYPERPARAMETERS = {
    "num_steps": (16, "pos", "steps per environment and update"),
    "lr": (0.1, "unit", "step size of the table update"),
    "gamma": (0.99, "unit", "discount"),
    "eps_start": (1.0, "prob", "initial exploration rate"),
    "eps_end": (0.05, "prob", "final exploration rate"),
    "eps_fraction": (0.5, "unit", "fraction of training over which exploration decays (--eps-schedule)"),
    "table_size_log2": (14, "pos", "log2 of the number of table rows (hashed observations)"),
    "q_init": (0.0, "any", "initial Q-value"),
    "table_key": (
        "observation",
        "any",
        "what a table row stands for: observation (a hash of the whole observation), attacker_node "
        "(the attacker's node, as the reference's TabularQAgent keys its attacker; attacker ids only) "
        "or single (one row for every state, as it keys its defender)",
    ),
    "tie_break": (
        "uniform",
        "any",
        "greedy choice among equal values: uniform (at random) or first (the lowest id, as the reference's "
        "TabularQAgent, whose zero-initialised table then plays the lowest legal id until a value moves)",
    ),
    "bootstrap": (
        "legal",
        "any",
        "the target's bootstrap: legal (the max over the next state's legal ids with --mask-illegal, every "
        "id without; none at a game's end) or all_always (the reference's TabularQAgent: the max over every "
        "id of the next observation's row, also at a game's end)",
    ),
    "eps_schedule": (
        "linear",
        "any",
        "exploration decay from --eps-start to --eps-end over --eps-fraction of training: linear, or "
        "exponential (a constant factor per step, as the reference's per-episode factor)",
    ),
}

OPTIONS = {**cli.SCENARIO_OPTIONS}  # --scenario FILE [--max-nodes N] | --generator NAME [--generator-arg K=V]; --mode

cli.start(__name__, globals())

import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from baselines import env_steps, host_loop, networks, scenarios
from baselines.errors import UsageError
from baselines.trainer import Trainer, plan_updates
from idsjax import backend, threefry

CHOICES = {
    "table_key": ("observation", "attacker_node", "single"),
    "tie_break": ("uniform", "first"),
    "bootstrap": ("legal", "all_always"),
    "eps_schedule": ("linear", "exponential"),
}


def validate(config: dict) -> None:
    if config["table_size_log2"] > 24:
        raise UsageError("--table-size-log2 must be <= 24")
    for name, allowed in CHOICES.items():
        if config[name] not in allowed:
            raise UsageError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {config[name]!r}")
    if config["eps_schedule"] == "exponential" and min(config["eps_start"], config["eps_end"]) <= 0:
        raise UsageError("--eps-schedule exponential needs --eps-start and --eps-end above 0")
    if config["table_key"] == "attacker_node" and (config.get("scenario") or config.get("generator")):
        raise UsageError(
            "--table-key attacker_node keys the table by a registered id's attacker-node column; with "
            "--scenario or --generator use --table-key observation"
        )
    scenarios.resolve(config)
    if config["table_key"] == "attacker_node":
        from baselines.cli import known_env

        env, _ = known_env(config["env"])
        if env.learner == "defender":
            raise UsageError(
                f"--table-key attacker_node: {config['env']!r} trains the defender, whose observation has no "
                "attacker position (the reference keys its defender's table with one row: --table-key single)"
            )
        if env.learner == "attacker" and env.config.spec.local_view:
            raise UsageError(
                f"--table-key attacker_node: {config['env']!r} has a local view, whose observation has no "
                "attacker-node flag (use --table-key observation)"
            )


def categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """`jax.random.categorical(key, logits)` over the last axis, bit for bit, with the hash fused on
    the CPU (`idsjax.threefry`). With one game per seed (the reference grid's mapping) a step's
    work is a few hundred tiny kernels, and `jax.random`'s CPU lowering runs each draw's hash as a
    loop of its own: the fused draws make this trainer's step 1.1-1.3x faster (benchmarks/NOTES.md
    §14). The Gumbel noise is `jax.random.gumbel`'s default ("low") mode, -log(-log(u)) with `u`
    uniform on [tiny, 1); elsewhere, or with high-dynamic-range Gumbel noise configured, this is
    `jax.random.categorical` itself."""
    if not backend.fused_threefry() or jax.config.jax_high_dynamic_range_gumbel:
        return jax.random.categorical(key, logits)
    tiny = np.float32(np.finfo(np.float32).tiny)
    u = jnp.maximum(tiny, threefry.uniform(key, logits.shape) + tiny)
    return jnp.argmax(-jnp.log(-jnp.log(u)) + logits, axis=-1)


class Runner(NamedTuple):
    q: jax.Array  # float32[rows, actions]
    env: env_steps.EnvCarry
    rng: jax.Array
    updates: jax.Array


def make_hash(obs_size: int, bits: int):
    """Multiply-shift hashing of a flattened int8 observation into `bits` bits."""
    multipliers = np.random.default_rng(12345).integers(1, 2**32, size=obs_size, dtype=np.uint64)
    multipliers = jnp.asarray(multipliers | 1, jnp.uint32)

    def index(obs):
        flat = obs.reshape(obs.shape[0], -1).astype(jnp.int32).astype(jnp.uint32) + jnp.uint32(1)
        h = (flat * multipliers).sum(axis=-1, dtype=jnp.uint32)
        h = (h ^ (h >> 15)) * jnp.uint32(0x2C1B3C6D)
        return (h >> (32 - bits)).astype(jnp.int32)

    return index


def make_index(config: dict, env, env_params):
    """(index, rows): the table row of each observation of a batch `[..., *obs_shape]`, and the
    table's number of rows, for `config["table_key"]`.

    attacker_node: the node whose flag (the column after the attack values) is 1, the first one as
    the reference's `get_attacker_node_from_observation`; an observation without a flagged node (none
    in idsjax) has its own row, `num_nodes`, so that nothing else shares a node's row."""
    key = config["table_key"]
    if key == "observation":
        obs_size = int(np.prod(env.observation_space(env_params).shape))
        return make_hash(obs_size, config["table_size_log2"]), 2 ** config["table_size_log2"]
    if key == "single":
        return (lambda obs: jnp.zeros(obs.shape[:-2], jnp.int32)), 1
    if key != "attacker_node" or env.learner != "attacker" or env.config.spec.local_view:
        raise ValueError(f"table key {key!r} does not apply to {env.name!r} (see `validate`)")
    n, flag_column = env.config.num_nodes, env.config.attack_types

    def index(obs):
        here = obs[..., flag_column] == 1
        return jnp.where(here.any(-1), jnp.argmax(here, axis=-1), n).astype(jnp.int32)

    return index, n + 1


def merge_updates(q: jax.Array, rows: jax.Array, ids: jax.Array, td: jax.Array, lr) -> jax.Array:
    """`q` after one simultaneous update of the cells `(rows[i], ids[i])` by TD errors `td[i]`:
    each distinct cell moves by `(1 - (1 - lr)^count) x mean(td of its count updates)`, i.e. as far
    as `count` sequential updates towards their mean target would take it (exactly `lr x td` for a
    cell updated once). O(n log n) in the number of updates, independent of the table's size."""
    n_actions = q.shape[1]
    n = td.shape[0]
    cell = rows * n_actions + ids
    order = jnp.argsort(cell)
    sorted_cell = cell[order]
    first = jnp.concatenate([jnp.ones((1,), bool), sorted_cell[1:] != sorted_cell[:-1]])
    group_sorted = jnp.cumsum(first) - 1  # group of each sorted update: 0 … distinct cells - 1
    group = jnp.zeros((n,), jnp.int32).at[order].set(group_sorted.astype(jnp.int32))
    count = jax.ops.segment_sum(jnp.ones((n,), jnp.float32), group, num_segments=n)[group]
    mean_td = jax.ops.segment_sum(td, group, num_segments=n)[group] / count
    step = 1.0 - (1.0 - lr) ** count
    # Every update of a cell writes the same value, so the scatter's order does not matter.
    return q.at[rows, ids].set(q[rows, ids] + step * mean_td)


def make_train(config: dict, env, env_params) -> Trainer:
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    masked = config["mask_illegal"]
    n_actions = env.action_space(env_params).n
    index, rows = make_index(config, env, env_params)
    decay_steps = config["eps_fraction"] * num_updates * steps_per_update
    first_tie = config["tie_break"] == "first"
    bootstrap_always = config["bootstrap"] == "all_always"
    eps_start, eps_end = config["eps_start"], config["eps_end"]

    def epsilon(updates):
        frac = jnp.clip(updates * steps_per_update / decay_steps, 0.0, 1.0)
        if config["eps_schedule"] == "exponential":
            return eps_start * (eps_end / eps_start) ** frac
        return eps_start + frac * (eps_end - eps_start)

    def choose(q, obs, mask, key, eps):
        values = networks.mask_logits(q[index(obs)], mask)
        # idsjax.threefry's draws are jax.random's, bit for bit (tests/test_threefry.py)
        k_explore, k_random, k_tie = threefry.split(key, 3)
        random_action = categorical(k_random, networks.mask_logits(jnp.zeros_like(values), mask))
        if first_tie:  # argmax returns the first maximum
            greedy = jnp.argmax(values, axis=-1)
        else:  # ties (e.g. unseen rows) are broken at random, not towards id 0
            greedy = jnp.argmax(values + 1e-6 * threefry.uniform(k_tie, values.shape), axis=-1)
        explore = threefry.uniform(k_explore, (obs.shape[0],)) < eps
        return jnp.where(explore, random_action, greedy)

    def init(rng):
        rng, k_env = jax.random.split(rng)
        carry = env_steps.reset_envs(env, env_params, k_env, n_envs)
        q = jnp.full((rows, n_actions), config["q_init"], jnp.float32)
        return Runner(q, carry, rng, jnp.int32(0))

    def env_step(runner: Runner, _):
        rng, k_act, k_env = threefry.split(runner.rng, 3)
        mask = env_steps.legal_mask(env, env_params, runner.env, masked)
        action = choose(runner.q, runner.env.obs, mask, k_act, epsilon(runner.updates))
        carry, step = env_steps.step_envs(env, env_params, runner.env, action, k_env, mask)
        s, s_next = index(step.obs), index(step.next_obs)
        if bootstrap_always:  # TabularQAgent: np.max over the whole row, game end or not
            target = step.reward + config["gamma"] * runner.q[s_next].max(-1)
        else:
            bootstrap = networks.masked_max(runner.q[s_next], step.next_mask)
            target = step.reward + config["gamma"] * (1.0 - step.done) * bootstrap
        td = target - runner.q[s, action]
        q = merge_updates(runner.q, s, action, td, config["lr"])
        return Runner(q, carry, rng, runner.updates), (step, jnp.abs(td).mean())

    def update(runner: Runner):
        runner, (steps, td) = jax.lax.scan(env_step, runner, None, n_steps)
        metrics = {**env_steps.episode_metrics(steps), "abs_td_error": td.mean()}
        return runner._replace(updates=runner.updates + 1), metrics

    def probs(runner: Runner, obs, mask):
        """Greedy evaluation: uniform over the ids whose (masked) value equals the row's maximum
        (with --tie-break first, all on the first of them)."""
        values = networks.mask_logits(runner.q[index(obs)], mask)
        if first_tie:
            return jax.nn.one_hot(jnp.argmax(values, axis=-1), n_actions, dtype=jnp.float32)
        best = values == values.max(-1, keepdims=True)
        return best.astype(jnp.float32) / best.sum(-1, keepdims=True)

    def act(runner: Runner, obs, mask, key):
        # Sampled from `probs` itself, so evaluation plays exactly the distribution exploitability
        # reads (training's `choose` breaks ties with a small noise, which float rounding can bias).
        return categorical(key, jnp.log(probs(runner, obs, mask)))

    return Trainer(
        init=init,
        update=update,
        act=act,
        num_updates=num_updates,
        steps_per_update=steps_per_update,
        probs=probs,
    )


def main(argv=None):
    return host_loop.run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
