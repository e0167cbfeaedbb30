"""Recurrent PPO (`python -m baselines.ppo --network gru`): a GRU actor-critic whose hidden state is
the policy's memory of the episode so far, and the trainer that carries it (PureJaxRL's ppo_rnn idea).

Network: each observation is embedded (one tanh layer of `--hidden` units), passed through a GRU cell
of `--hidden` units, and read by a policy head and a value head (one tanh layer each). The memory is
the GRU's hidden state; it starts at zeros and goes back to zeros where an episode starts (`reset`),
so nothing of one game leaks into the next.

Training: the rollout carries each environment's hidden state and whether its last step ended an
episode (the next step then starts from zeros). The update replays every environment's sequence
of `--num-steps` steps through the GRU from the hidden state it had at the rollout's start, with the
same resets, so the log-probabilities and values are those of the policy that acted. Minibatches
split the environments, never the time steps: each minibatch is `num_envs / num_minibatches` whole
sequences. The losses, GAE and epochs are PPO's (`baselines.policy_gradient`).

Acting outside training (evaluation, checkpoints): `RecurrentAct`, the trainer's `act`, takes and
returns the hidden state; `baselines.evaluation` and `baselines.checkpoints` turn it into an
`idsjax.policies.RecurrentPolicy`, which `idsjax.rollout`, `play`, `render` and the server carry.
A policy with memory has no fixed distribution per state, so exact exploitability refuses it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.training.train_state import TrainState

from baselines import env_steps, policy_gradient
from baselines.networks import MLP, OBS_SCALE, mask_logits, scaled_init
from baselines.trainer import Trainer, plan_updates


class _ScannedGRU(nn.Module):
    """A GRU cell scanned over the leading (time) axis; the hidden state is zeroed where `reset`."""

    hidden: int

    @functools.partial(nn.scan, variable_broadcast="params", split_rngs={"params": False}, in_axes=0, out_axes=0)
    @nn.compact
    def __call__(self, h, inputs):
        x, reset = inputs
        h = jnp.where(reset[:, None], jnp.zeros_like(h), h)
        # Not flax's default orthogonal recurrent kernel: batched QR under `vmap` over seeds can hang
        # on the CPU (`networks.scaled_init`).
        cell = nn.GRUCell(self.hidden, kernel_init=scaled_init(1.0), recurrent_kernel_init=scaled_init(1.0))
        h, y = cell(h, x)
        return h, y


class GRUActorCritic(nn.Module):
    """`(h [B, H], x float32[T, B, F], reset bool[T, B]) -> (h after T steps, logits [T, B, A], value [T, B])`."""

    num_actions: int
    hidden: int = 64

    @nn.compact
    def __call__(self, h, x, reset):
        x = nn.tanh(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(x))
        h, y = _ScannedGRU(self.hidden)(h, (x, reset))
        logits = MLP(self.num_actions, self.hidden, 1, "tanh", 0.01)(y)
        value = MLP(1, self.hidden, 1, "tanh", 1.0)(y)
        return h, logits, value.squeeze(-1)


def features(obs: jax.Array) -> jax.Array:
    """int8 observations [T, B, *obs_shape] -> float32 [T, B, features]."""
    return obs.reshape(obs.shape[:2] + (-1,)).astype(jnp.float32) / OBS_SCALE


def sequence_policy(network: GRUActorCritic) -> Callable:
    """`policy(params, h, obs [T, B, ...], reset [T, B], mask [T, B, A] | None) -> (h, Categorical, value)`."""

    def policy(params, h, obs, reset, mask):
        h, logits, value = network.apply(params, h, features(obs), reset)
        return h, distrax.Categorical(logits=mask_logits(logits, mask)), value

    return policy


def initial_hidden(hidden: int, batch: int) -> jax.Array:
    """The memory of `batch` fresh games: zeros (also what a reset sets)."""
    return jnp.zeros((batch, hidden), jnp.float32)


class RecurrentAct(NamedTuple):
    """The recurrent trainer's evaluation policy, with its memory passed in and out.

    `init_carry(runner, n)`: the hidden state of `n` fresh games; `step(runner, obs [B], mask [B] |
    None, key, carry) -> (ids [B], carry)`: one step of `B` games (sampled with `key`, or the most
    likely id when the run evaluates greedily). The caller resets a game's carry to `init_carry`
    where its episode starts. Calling it as a memoryless `act` is refused."""

    init_carry: Callable[[Any, int], jax.Array]
    step: Callable[..., tuple[jax.Array, jax.Array]]

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "this trainer's policy has memory (--network gru): act with .step(runner, obs, mask, key, carry) "
            "from .init_carry(runner, n)"
        )


def is_recurrent(config: dict) -> bool:
    return config.get("network") == "gru"


class Runner(NamedTuple):
    train_state: TrainState
    env: env_steps.EnvCarry
    rng: jax.Array
    hidden: jax.Array  # [E, H]: each environment's memory before its next step
    reset: jax.Array  # bool [E]: the environment's next step starts an episode (its memory is zeroed)


class SequenceBatch(NamedTuple):
    """One rollout, environment-major ([E, T, ...]; `h0` [E, H]), so that minibatches split environments."""

    h0: jax.Array
    obs: jax.Array
    reset: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mask: jax.Array | None
    advantage: jax.Array
    target: jax.Array


class Parts(NamedTuple):
    """The recurrent trainer's pieces: `collect(runner)` is the rollout that `update` learns from
    (`(runner, steps, resets, log_probs, values, initial memories)`), `policy` the sequence policy."""

    init: Callable
    collect: Callable
    update: Callable
    policy: Callable
    act: RecurrentAct
    num_updates: int


def build(config: dict, env, env_params) -> Parts:
    """The pieces of `make_train` (`Parts`)."""
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    n_mb, epochs = config["num_minibatches"], config["update_epochs"]
    masked = config["mask_illegal"]
    n_actions = env.action_space(env_params).n
    hidden = config["hidden"]
    memory = not config.get("memoryless_gru", False)
    network = GRUActorCritic(n_actions, hidden)
    policy = sequence_policy(network)

    tx = policy_gradient.ppo_optimizer(config, num_updates, n_mb, epochs)

    def init(rng):
        rng, k_net, k_env = jax.random.split(rng, 3)
        carry = env_steps.reset_envs(env, env_params, k_env, n_envs)
        h = initial_hidden(hidden, n_envs)
        params = network.init(k_net, h[:1], features(carry.obs[None, :1]), jnp.zeros((1, 1), bool))
        ts = TrainState.create(apply_fn=network.apply, params=params, tx=tx)
        return Runner(ts, carry, rng, h, jnp.ones((n_envs,), bool))

    def starts(runner: Runner):
        # The memoryless control wipes the memory before every step: the same network, no memory.
        return runner.reset if memory else jnp.ones_like(runner.reset)

    def env_step(runner: Runner, _):
        rng, k_act, k_env = jax.random.split(runner.rng, 3)
        mask = env_steps.legal_mask(env, env_params, runner.env, masked)
        reset = starts(runner)
        h, pi, value = policy(
            runner.train_state.params,
            runner.hidden,
            runner.env.obs[None],
            reset[None],
            None if mask is None else mask[None],
        )
        action = pi.sample(seed=k_act)[0]
        carry, step = env_steps.step_envs(env, env_params, runner.env, action, k_env, mask)
        out = (step, reset, pi.log_prob(action[None])[0], value[0])
        return Runner(runner.train_state, carry, rng, h, step.done), out

    def loss_fn(params, b: SequenceBatch):
        time_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), b._replace(h0=None))
        _, pi, value = policy(params, b.h0, time_major.obs, time_major.reset, time_major.mask)
        return policy_gradient.clipped_loss(
            pi,
            value,
            time_major.action,
            time_major.log_prob,
            time_major.advantage,
            time_major.target,
            config["clip_eps"],
            config["vf_coef"],
            config["ent_coef"],
        )

    def collect(runner: Runner):
        """One rollout: (runner after it, its steps, the reset flag each step started with, log-probs,
        values, and the memories it started from)."""
        h0 = runner.hidden
        runner, (steps, resets, log_prob, values) = jax.lax.scan(env_step, runner, None, n_steps)
        return runner, steps, resets, log_prob, values, h0

    def update(runner: Runner):
        runner, steps, resets, log_prob, values, h0 = collect(runner)
        _, _, last_value = policy(
            runner.train_state.params, runner.hidden, runner.env.obs[None], starts(runner)[None], None
        )
        advantage, target = policy_gradient.gae(
            steps.reward * config["reward_scale"],
            steps.done.astype(jnp.float32),
            values,
            last_value[0],
            config["gamma"],
            config["gae_lambda"],
        )
        chex.assert_shape([advantage, target, log_prob, resets], (n_steps, n_envs))
        batch = SequenceBatch(None, steps.obs, resets, steps.action, log_prob, steps.mask, advantage, target)
        batch = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch)._replace(h0=h0)
        rng, k_epochs = jax.random.split(runner.rng)
        ts, info = policy_gradient.minibatch_epochs(runner.train_state, batch, loss_fn, k_epochs, epochs, n_mb)
        return runner._replace(train_state=ts, rng=rng), {**env_steps.episode_metrics(steps), **info}

    act = evaluation_act(policy, hidden, config["eval_greedy"], memory)
    return Parts(init, collect, update, policy, act, num_updates)


def make_train(config: dict, env, env_params) -> Trainer:
    """PPO with the GRU actor-critic (see the module docstring); `config` as `baselines.ppo`'s."""
    parts = build(config, env, env_params)
    return Trainer(
        init=parts.init,
        update=parts.update,
        act=parts.act,
        num_updates=parts.num_updates,
        steps_per_update=config["num_envs"] * config["num_steps"],
        probs=None,  # a policy with memory has no distribution per state
    )


def evaluation_act(policy, hidden: int, greedy: bool, memory: bool = True) -> RecurrentAct:
    """The trainer's `act` (`RecurrentAct`): one step of the memory and the action of a batch of games
    (without `memory`, the memoryless control's: wiped before every step)."""

    def init_carry(runner, n: int):
        return initial_hidden(hidden, n)

    def step(runner, obs, mask, key, carry):
        # The caller resets a new episode's carry; the memoryless control wipes it at every step.
        reset = jnp.full((1, obs.shape[0]), not memory)
        h, pi, _ = policy(runner.train_state.params, carry, obs[None], reset, None if mask is None else mask[None])
        # The distribution of one time step, so that sampling draws exactly as a one-step policy would.
        step_pi = distrax.Categorical(logits=pi.logits[0])
        return jnp.where(greedy, step_pi.mode(), step_pi.sample(seed=key)), h

    return RecurrentAct(init_carry, step)


# --- the memory experiment's comparison (baselines/MEMORY.md) -----------------------------------------
def compare_runs(memoryless_dir: str, recurrent_dir: str) -> dict:
    """The paired comparison of a `--network gru` run with its memoryless twin (same id, budget, seeds
    and evaluation): per seed the hack probability and its binomial SE in each arm, the per-seed
    difference (recurrent - memoryless; seed i of one arm paired with seed i of the other, which trained
    on the same environment draws), its Student-t 95% interval over seeds, and rliable's interquartile
    mean (stratified bootstrap 95% CI) of each arm's score and probability of improvement of the
    recurrent arm, where a score is the learner's: the hack probability for an attacker, 1 minus it for
    a defender. Raises UsageError (one sentence) where the runs are not such a pair."""
    import json
    import os

    from baselines import statistics
    from baselines.errors import UsageError

    def read(path):
        try:
            with open(os.path.join(path, "config.json")) as f:
                config = json.load(f)
            with open(os.path.join(path, "eval.json")) as f:
                ev = json.load(f)
        except (OSError, ValueError):
            raise UsageError(f"{path!r} holds no finished run (config.json and eval.json)") from None
        return config, ev

    (c_a, e_a), (c_b, e_b) = read(memoryless_dir), read(recurrent_dir)

    def has_memory(config):
        return config.get("network") == "gru" and not config.get("memoryless_gru", False)

    if has_memory(c_a) or not has_memory(c_b):
        raise UsageError(
            "give the memoryless run first (--network mlp, or --network gru --memoryless-gru) and the "
            "--network gru run second"
        )
    same = ("algo", "env", "seed", "num_seeds", "total_timesteps", "num_envs", "num_steps", "eval_episodes", "hidden")
    differ = [k for k in same if c_a.get(k) != c_b.get(k)]
    if differ:
        raise UsageError(f"the two runs differ in {', '.join(differ)}: they are not a paired comparison")
    if c_a["num_seeds"] < 2:
        raise UsageError("a paired comparison over seeds needs at least two seeds per run")
    import idsjax

    side = idsjax.make(c_a["env"])[0].learner
    games = [[int(s["episodes"]) for s in e["per_seed"]] for e in (e_a, e_b)]
    if min(min(g) for g in games) < 1:
        raise UsageError("a seed finished no evaluation game: its hack probability is undefined")
    p = [np.array([s["hack_probability"] for s in e["per_seed"]]) for e in (e_a, e_b)]
    se = [np.sqrt(x * (1 - x) / np.asarray(g, np.float64)) for x, g in zip(p, games)]
    diff = p[1] - p[0]
    interval = statistics.t_interval(diff)
    score = [x if side == "attacker" else 1 - x for x in p]
    iqm = statistics.aggregate_intervals({"memoryless": score[0], "recurrent": score[1]}, metrics=("iqm", "mean"))
    poi = statistics.probability_of_improvement(score[1], score[0])
    rounded = lambda xs: [round(float(x), 4) for x in xs]  # noqa: E731
    return {
        "env": c_a["env"],
        "side": side,
        "budget_steps_per_seed": c_a["total_timesteps"],
        "seeds": c_a["num_seeds"],
        "eval_games_per_seed": games[0],
        "memoryless_run": memoryless_dir,
        "memoryless_network": c_a.get("network", "mlp")
        + (" (memory wiped every step)" if c_a.get("memoryless_gru") else ""),
        "recurrent_run": recurrent_dir,
        "hack_probability": {
            "memoryless_per_seed": rounded(p[0]),
            "memoryless_se_per_seed": rounded(se[0]),
            "recurrent_per_seed": rounded(p[1]),
            "recurrent_se_per_seed": rounded(se[1]),
            "memoryless_mean": round(float(p[0].mean()), 4),
            "memoryless_mean_se": round(float(np.sqrt((se[0] ** 2).sum()) / len(se[0])), 4),
            "recurrent_mean": round(float(p[1].mean()), 4),
            "recurrent_mean_se": round(float(np.sqrt((se[1] ** 2).sum()) / len(se[1])), 4),
        },
        "paired_difference": {
            "what": "hack probability, recurrent - memoryless, seed by seed",
            "per_seed": rounded(diff),
            "mean": round(interval.mean, 4),
            "se_over_seeds": round(interval.se, 4),
            "t95": [round(interval.low, 4), round(interval.high, 4)],
        },
        "learner_score": "hack probability" if side == "attacker" else "1 - hack probability",
        "iqm_95ci": {k: [round(x, 4) for x in v["iqm"]] for k, v in iqm.items()},
        "mean_95ci": {k: [round(x, 4) for x in v["mean"]] for k, v in iqm.items()},
        "probability_of_improvement_recurrent_over_memoryless_95ci": [round(x, 4) for x in poi],
    }


def main(argv=None) -> int:
    """`python -m baselines.recurrent --compare MEMORYLESS_RUN RECURRENT_RUN [--out FILE]`: the paired
    comparison of a `--network gru` run with its memoryless twin (`compare_runs`), as JSON."""
    import argparse
    import json
    import sys

    from baselines.errors import UsageError

    parser = argparse.ArgumentParser(prog="python -m baselines.recurrent", description=main.__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs=2, required=True, metavar=("MEMORYLESS_RUN", "RECURRENT_RUN"))
    parser.add_argument("--out", help="also write the comparison to this JSON file")
    args = parser.parse_args(argv)
    try:
        result = compare_runs(*args.compare)
    except UsageError as err:
        print(f"python -m baselines.recurrent: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
