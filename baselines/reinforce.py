"""REINFORCE with a learnt state-value baseline (Monte-Carlo returns, no bootstrapping).

One update: a rollout of `num_steps` steps in `num_envs` environments (`lax.scan`), discounted
returns-to-go computed backwards (reverse `lax.scan`), one gradient step on
`-log pi(a|s) (G - V(s)) + vf_coef (G - V(s))^2 - ent_coef H`. A game lasts at most 102 calls, so with
the default `num_steps = 128` every environment finishes an episode per rollout; the steps after an
environment's last episode end in a rollout have no complete return yet and are left out of the loss
(weight 0), which keeps the estimator pure Monte-Carlo. The environments carry on into the next
rollout, whose first steps complete those episodes and do count.

    python -m baselines.reinforce --env idsgame-random_defense-v7
"""

from __future__ import annotations

# ruff: noqa: E402
# Tables first, imports after: run as the program, `cli.start` reads the tables below, answers --help,
# refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli

ALGO = "reinforce"
EVAL_POLICY = "the trained policy, sampled (--eval-greedy: its most likely action)"
ENV_DEFAULTS = {"env": "idsgame-random_defense-v7", "total_timesteps": 500_000, "num_envs": 32, "mask_illegal": True}
HYPERPARAMETERS = {
    "num_steps": (128, "pos", "rollout length per environment and update (>= 102 recommended)"),
    "lr": (1e-3, "pos", "Adam learning rate"),
    "gamma": (0.99, "unit", "discount"),
    "ent_coef": (0.01, "nonneg", "entropy bonus"),
    "vf_coef": (0.5, "nonneg", "baseline loss weight"),
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


def returns_to_go(rewards, dones, gamma):
    """Discounted returns inside a [T, N] rollout and whether each is complete (an episode end
    follows within the rollout)."""

    def back(carry, x):
        ret, complete = carry
        reward, done = x
        ret = reward + gamma * (1.0 - done) * ret
        complete = (done > 0) | complete
        return (ret, complete), (ret, complete)

    init = (jnp.zeros_like(rewards[0]), jnp.zeros(rewards.shape[1], bool))
    _, (ret, complete) = jax.lax.scan(back, init, (rewards, dones), reverse=True)
    return ret, complete


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

    def loss_fn(params, steps: env_steps.Step, ret, weight):
        flat = lambda x: x.reshape((steps_per_update,) + x.shape[2:])  # noqa: E731
        mask = None if steps.mask is None else flat(steps.mask)
        pi, value = policy(params, flat(steps.obs), mask)
        ret, weight = flat(ret), flat(weight)
        advantage = jax.lax.stop_gradient(ret - value)
        denom = jnp.maximum(weight.sum(), 1.0)
        actor = -(pi.log_prob(flat(steps.action)) * advantage * weight).sum() / denom
        baseline = (jnp.square(ret - value) * weight).sum() / denom
        entropy = (pi.entropy() * weight).sum() / denom
        total = actor + config["vf_coef"] * baseline - config["ent_coef"] * entropy
        return total, {"actor_loss": actor, "value_loss": baseline, "entropy": entropy}

    def update(runner: Runner):
        runner, steps = jax.lax.scan(env_step, runner, None, n_steps)
        ret, complete = returns_to_go(
            steps.reward * config["reward_scale"], steps.done.astype(jnp.float32), config["gamma"]
        )
        chex.assert_shape([ret, complete], (n_steps, n_envs))
        weight = complete.astype(jnp.float32)
        grads, info = jax.grad(loss_fn, has_aux=True)(runner.train_state.params, steps, ret, weight)
        ts = runner.train_state.apply_gradients(grads=grads)
        metrics = {**env_steps.episode_metrics(steps), **info, "used_fraction": weight.mean()}
        return runner._replace(train_state=ts), metrics

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
