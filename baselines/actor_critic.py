"""Advantage actor-critic (synchronous A2C): n-step returns bootstrapped by the critic.

One update: a rollout of `num_steps` steps in `num_envs` environments (`lax.scan`), returns
bootstrapped from the critic's value of the last observation (reverse `lax.scan`; with
`gae_lambda < 1` generalised advantage estimation), one gradient step on
`-log pi(a|s) A + vf_coef (R - V(s))^2 - ent_coef H`. Game ends (hacked, detected, the step-limit
penalty) are terminal: nothing is bootstrapped across them.

    python -m baselines.actor_critic --env idsgame-random_defense-v7
"""

from __future__ import annotations

# ruff: noqa: E402
# Tables first, imports after: run as the program, `cli.start` reads the tables below, answers --help,
# refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli

ALGO = "actor_critic"
EVAL_POLICY = "the trained policy, sampled (--eval-greedy: its most likely action)"
ENV_DEFAULTS = {"env": "idsgame-random_defense-v7", "total_timesteps": 300_000, "num_envs": 32, "mask_illegal": True}
HYPERPARAMETERS = {
    "num_steps": (8, "pos", "rollout length per environment and update (n of the n-step return)"),
    "lr": (1e-3, "pos", "Adam learning rate"),
    "gamma": (0.99, "unit", "discount"),
    "gae_lambda": (1.0, "prob", "GAE lambda (1: plain n-step returns)"),
    "ent_coef": (0.01, "nonneg", "entropy bonus"),
    "vf_coef": (0.5, "nonneg", "critic loss weight"),
    "max_grad_norm": (0.5, "pos", "gradient clip (global norm)"),
    "reward_scale": (0.1, "pos", "rewards are multiplied by this for learning"),
    "eval_greedy": (False, "any", "evaluate the most likely action instead of sampling the policy"),
    "hidden": (64, "pos", "units per hidden layer"),
    "layers": (2, "pos", "hidden layers"),
}

OPTIONS = {**cli.SCENARIO_OPTIONS}  # --scenario FILE [--max-nodes N] | --generator NAME [--generator-arg K=V]; --mode

cli.start(__name__, globals())

import sys
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from baselines import env_steps, host_loop, networks, policy_gradient, scenarios
from baselines.trainer import Trainer, plan_updates


def validate(config: dict) -> None:
    scenarios.resolve(config)  # --scenario / --generator: checks them and names the game


class Runner(NamedTuple):
    train_state: TrainState
    env: env_steps.EnvCarry
    rng: jax.Array


def make_train(config: dict, env, env_params) -> Trainer:
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    masked = config["mask_illegal"]
    n_actions = env.action_space(env_params).n
    network = networks.ActorCritic(n_actions, config["hidden"], config["layers"])
    tx = optax.chain(optax.clip_by_global_norm(config["max_grad_norm"]), optax.adam(config["lr"]))

    policy = policy_gradient.masked_policy(network)

    def init(rng):
        rng, k_net, k_env = jax.random.split(rng, 3)
        carry = env_steps.reset_envs(env, env_params, k_env, n_envs)
        params = network.init(k_net, networks.preprocess(carry.obs[:1]))
        return Runner(TrainState.create(apply_fn=network.apply, params=params, tx=tx), carry, rng)

    def env_step(runner: Runner, _):
        rng, k_act, k_env = jax.random.split(runner.rng, 3)
        mask = env_steps.legal_mask(env, env_params, runner.env, masked)
        pi, _ = policy(runner.train_state.params, runner.env.obs, mask)
        action = pi.sample(seed=k_act)
        carry, step = env_steps.step_envs(env, env_params, runner.env, action, k_env, mask)
        return Runner(runner.train_state, carry, rng), step

    def loss_fn(params, steps: env_steps.Step, last_obs):
        flat = lambda x: x.reshape((steps_per_update,) + x.shape[2:])  # noqa: E731
        mask = None if steps.mask is None else flat(steps.mask)
        pi, value = policy(params, flat(steps.obs), mask)
        _, last_value = policy(params, last_obs, None)
        values = jax.lax.stop_gradient(value.reshape(n_steps, n_envs))
        last_value = jax.lax.stop_gradient(last_value)

        advantage, returns = policy_gradient.gae(
            steps.reward * config["reward_scale"],
            steps.done.astype(jnp.float32),
            values,
            last_value,
            config["gamma"],
            config["gae_lambda"],
        )
        chex.assert_shape(advantage, (n_steps, n_envs))
        target = flat(returns)
        actor = -(pi.log_prob(flat(steps.action)) * flat(advantage)).mean()
        critic = jnp.square(target - value).mean()
        entropy = pi.entropy().mean()
        total = actor + config["vf_coef"] * critic - config["ent_coef"] * entropy
        return total, {"actor_loss": actor, "value_loss": critic, "entropy": entropy}

    def update(runner: Runner):
        runner, steps = jax.lax.scan(env_step, runner, None, n_steps)
        grads, info = jax.grad(loss_fn, has_aux=True)(runner.train_state.params, steps, runner.env.obs)
        ts = runner.train_state.apply_gradients(grads=grads)
        return runner._replace(train_state=ts), {**env_steps.episode_metrics(steps), **info}

    return Trainer(
        init=init,
        update=update,
        act=policy_gradient.evaluation_act(policy, config["eval_greedy"]),
        num_updates=num_updates,
        steps_per_update=steps_per_update,
        probs=policy_gradient.evaluation_probs(policy, config["eval_greedy"]),
    )


def main(argv=None):
    return host_loop.run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
