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
# Tables first, imports after: run as the program, `cli.start` reads the tables (`baselines.ppo_options`),
# answers --help, refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli
from baselines.ppo_options import ALGO, ENV_DEFAULTS, EVAL_POLICY, HYPERPARAMETERS, OPTIONS  # noqa: F401 (cli.start reads them)

cli.start(__name__, globals())

import sys
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
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

    tx = policy_gradient.ppo_optimizer(config, num_updates, n_mb, epochs)

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
