"""Proximal Policy Optimisation (clipped surrogate, GAE), PureJaxRL style.

One update: a rollout of `num_steps` steps in `num_envs` environments (`lax.scan`), GAE (reverse
`lax.scan`), then `update_epochs` epochs of `num_minibatches` shuffled minibatches (nested
`lax.scan`s). `train(rng)` is the whole run as one program; `jax.vmap` runs seeds side by side.

Episodes end on termination (hacked, detected) and on truncation: the step-limit call pays -100 to
both players and ends the game, so it is a terminal reward, not a cut to bootstrap across.

    python -m baselines.ppo                                        # attacker vs defend-minimal, v7
    python -m baselines.ppo --env idsgame-maximal_attack-v7        # defender vs attack-maximal
    python -m baselines.ppo --scenario scenarios/examples/office_dmz.yaml --mode minimal_defense
    python -m baselines.ppo --generator small --network nodes       # a new network at every reset
    python -m baselines.ppo --generator small --network nodes --node-features   # with roles and depth
    python -m baselines.ppo --env idsgame-maximal_attack-v19 --network gru      # a defender with memory

`--network gru` is a network choice rather than a flag of its own: memory is one more way to read the
observations, exclusive with the node-wise network, and a run's `config.json` then names it in the one
field every loader already reads (`baselines.recurrent` holds the recurrent trainer).
"""

from __future__ import annotations

# ruff: noqa: E402
# Tables first, imports after: run as the program, `cli.start` reads the tables below, answers --help,
# refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli

ALGO = "ppo"
EVAL_POLICY = "the trained policy, sampled (--eval-greedy: its most likely action)"
# Masking: unmasked, 50 of the attacker's 80 ids are illegal (-1, nothing happens) and PPO's policy
# collapsed onto a poor attack (hack probability 0.27 after 1M steps); masked, it is near-optimal
# (about 0.89-0.90 vs defend-minimal, whose ceiling is about 0.90 for the v7 layout) within 30k steps.
ENV_DEFAULTS = {"total_timesteps": 200_000, "num_envs": 32, "mask_illegal": True}
HYPERPARAMETERS = {
    # name: (default, check, help)
    "num_steps": (32, "pos", "rollout length per environment and update"),
    "lr": (1e-3, "pos", "Adam learning rate"),
    "anneal_lr": (True, "any", "anneal the learning rate linearly to 0"),
    "gamma": (0.99, "unit", "discount"),
    "gae_lambda": (0.95, "prob", "GAE lambda"),
    "update_epochs": (4, "pos", "epochs per update"),
    "num_minibatches": (4, "pos", "minibatches per epoch"),
    "clip_eps": (0.2, "pos", "surrogate clip range"),
    "ent_coef": (0.01, "nonneg", "entropy bonus"),
    "vf_coef": (0.5, "nonneg", "value loss weight"),
    "max_grad_norm": (0.5, "pos", "gradient clip (global norm)"),
    "reward_scale": (0.1, "pos", "rewards are multiplied by this for learning (metrics stay unscaled)"),
    "eval_greedy": (False, "any", "evaluate the most likely action instead of sampling the policy"),
    "hidden": (64, "pos", "units per hidden layer (--network nodes --node-mixer attention: per node)"),
    "layers": (2, "pos", "hidden layers (--network nodes --node-mixer attention: transformer blocks over the nodes)"),
}
# Options of ppo's own command line that are not hyperparameters self-play's best responses share
# (`baselines.selfplay` builds its parser from HYPERPARAMETERS, and has a --policy of its own).
OPTIONS = {
    "network": {
        "default": "mlp",
        "choices": ("mlp", "nodes", "gru"),
        "help": "mlp: separate policy and value MLPs on the flattened observation; nodes: one node-wise "
        "network (--node-mixer) that plays networks of any size (baselines.node_policy); gru: a policy with "
        "memory, a GRU of --hidden units reset at every episode's start, with one-layer heads (--layers does "
        "not apply; baselines.recurrent)",
    },
    # The control of the memory experiment (baselines/MEMORY.md): what the GRU gains from its
    # architecture alone. A run saved before this option existed has no such key: it has memory.
    "memoryless_gru": {
        "default": False,
        "action": "store_true",
        "help": "--network gru: wipe the memory before every step (the same network without memory, the "
        "control of a memory experiment)",
    },
    # The node-wise network's own shape (`baselines.node_policy`); a run saved before these options
    # existed was the attention network at --hidden and --layers, and loads as that.
    "node_mixer": {
        "default": "mean",
        "choices": ("mean", "attention"),
        "help": "--network nodes: how nodes see each other; mean: each node reads the mean of the others "
        "(fast); attention: a transformer over the nodes (at --hidden and --layers)",
    },
    "node_hidden": {"default": 16, "type": int, "help": "--network nodes with --node-mixer mean: units per node"},
    "node_blocks": {"default": 1, "type": int, "help": "--network nodes with --node-mixer mean: mixing layers"},
    # Off by default so that every run's observations stay the game's own; a run saved before this
    # option existed has no such key and loads without the columns, as it was trained.
    "node_features": {
        "default": False,
        "action": "store_true",
        "help": "append each node's role (start, server, data) and depth to its observation row "
        "(idsjax.node_features), in training, evaluation and wherever the checkpoint is loaded; any "
        "--network, refused where the learner's rows are not nodes (local views)",
    },
    **cli.SCENARIO_OPTIONS,  # --scenario FILE [--max-nodes N] | --generator NAME [--generator-arg K=V]; --mode
}

cli.start(__name__, globals())

import sys
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from baselines import checkpoints, env_steps, host_loop, networks, node_policy, policy_gradient, recurrent, scenarios
from baselines.errors import UsageError
from baselines.trainer import Trainer, plan_updates


def validate(config: dict) -> None:
    if (config["num_envs"] * config["num_steps"]) % config["num_minibatches"]:
        raise UsageError("--num-envs x --num-steps must be divisible by --num-minibatches")
    if config.get("memoryless_gru") and not recurrent.is_recurrent(config):
        raise UsageError("--memoryless-gru goes with --network gru")
    if recurrent.is_recurrent(config):
        if config["num_envs"] % config["num_minibatches"]:
            raise UsageError(
                "--network gru: --num-envs must be divisible by --num-minibatches (minibatches are whole "
                "sequences of environments)"
            )
        if config.get("devices", 1) not in (1, None):
            raise UsageError("--network gru trains on one device (--devices 1)")
    for name in ("node_hidden", "node_blocks"):
        if config.get(name, 1) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {config[name]}")
    scenarios.resolve(config)
    if config.get("node_features"):
        scenarios.check_node_features(config)


class Runner(NamedTuple):
    train_state: TrainState
    env: env_steps.EnvCarry
    rng: jax.Array


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mask: jax.Array | None
    advantage: jax.Array
    target: jax.Array


def actor_critic(config: dict, env, env_params, n_actions: int):
    """(init(key, obs) -> params, policy(params, obs, mask) -> (Categorical, value)) of `--network`
    (the memoryless ones: `--network gru` is `baselines.recurrent`'s)."""
    if recurrent.is_recurrent(config):
        raise ValueError("--network gru has memory: its policy is baselines.recurrent.sequence_policy")
    if config.get("network", "mlp") == "nodes":
        mixer = config.get("node_mixer", "attention")
        shape = ("hidden", "layers") if mixer == "attention" else ("node_hidden", "node_blocks")
        return node_policy.actor_critic(env, env_params, n_actions, *(config[k] for k in shape), mixer)
    network = networks.ActorCritic(n_actions, config["hidden"], config["layers"])
    return (lambda key, obs: network.init(key, networks.preprocess(obs))), policy_gradient.masked_policy(network)


def make_train(config: dict, env, env_params) -> Trainer:
    if recurrent.is_recurrent(config):
        return recurrent.make_train(config, env, env_params)
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    n_mb, epochs = config["num_minibatches"], config["update_epochs"]
    masked = config["mask_illegal"]
    n_actions = env.action_space(env_params).n
    init_params, policy = actor_critic(config, env, env_params, n_actions)

    def schedule(count):
        frac = 1.0 - (count // (n_mb * epochs)) / num_updates
        return config["lr"] * frac if config["anneal_lr"] else config["lr"]

    tx = optax.chain(optax.clip_by_global_norm(config["max_grad_norm"]), optax.adam(schedule, eps=1e-5))

    def init(rng):
        rng, k_net, k_env = jax.random.split(rng, 3)
        carry = env_steps.reset_envs(env, env_params, k_env, n_envs)
        params = init_params(k_net, carry.obs[:1])
        ts = TrainState.create(apply_fn=policy, params=params, tx=tx)
        return Runner(ts, carry, rng)

    def env_step(runner: Runner, _):
        rng, k_act, k_env = jax.random.split(runner.rng, 3)
        mask = env_steps.legal_mask(env, env_params, runner.env, masked)
        pi, value = policy(runner.train_state.params, runner.env.obs, mask)
        action = pi.sample(seed=k_act)
        carry, step = env_steps.step_envs(env, env_params, runner.env, action, k_env, mask)
        return Runner(runner.train_state, carry, rng), (step, pi.log_prob(action), value)

    def loss_fn(params, b: Batch):
        pi, value = policy(params, b.obs, b.mask)
        return policy_gradient.clipped_loss(
            pi,
            value,
            b.action,
            b.log_prob,
            b.advantage,
            b.target,
            config["clip_eps"],
            config["vf_coef"],
            config["ent_coef"],
        )

    def update(runner: Runner):
        runner, (steps, log_prob, values) = jax.lax.scan(env_step, runner, None, n_steps)
        # The node policy reads the legal ids as input, so its bootstrap value sees them too.
        last_mask = env_steps.legal_mask(env, env_params, runner.env, masked and config.get("network") == "nodes")
        _, last_value = policy(runner.train_state.params, runner.env.obs, last_mask)
        advantage, target = policy_gradient.gae(
            steps.reward * config["reward_scale"],
            steps.done.astype(jnp.float32),
            values,
            last_value,
            config["gamma"],
            config["gae_lambda"],
        )
        chex.assert_shape([advantage, target, log_prob], (n_steps, n_envs))
        batch = Batch(steps.obs, steps.action, log_prob, steps.mask, advantage, target)
        batch = jax.tree.map(lambda x: x.reshape((steps_per_update,) + x.shape[2:]), batch)
        rng, k_epochs = jax.random.split(runner.rng)
        ts, info = policy_gradient.minibatch_epochs(runner.train_state, batch, loss_fn, k_epochs, epochs, n_mb)
        return Runner(ts, runner.env, rng), {**env_steps.episode_metrics(steps), **info}

    return Trainer(
        init=init,
        update=update,
        act=policy_gradient.evaluation_act(policy, config["eval_greedy"]),
        num_updates=num_updates,
        steps_per_update=steps_per_update,
        probs=policy_gradient.evaluation_probs(policy, config["eval_greedy"]),
    )


def load_policy(output_dir: str, env, env_params, seed_index: int = 0, side: str | None = None):
    """A trained PPO policy `(key, obs, state) -> action id` from a run's `--output-dir`."""
    return checkpoints.load_policy(output_dir, env, env_params, side=side, algo=ALGO, seed_index=seed_index)


def main(argv=None):
    return host_loop.run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
