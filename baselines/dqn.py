"""Deep Q-learning (double DQN, Huber loss, target network) with the replay buffer on the device.

One update: `num_steps` epsilon-greedy steps in `num_envs` environments (`lax.scan`), their
transitions written into a circular buffer (fixed-size arrays inside the runner state), then
`gradient_steps` minibatch steps (`lax.scan`) once the buffer holds `learning_starts` transitions.
The target network is copied every `target_update_every` updates. `train(rng)` is the whole run as
one program; `jax.vmap` runs seeds side by side.

With `--mask-illegal` the behaviour and evaluation policies pick among legal ids only, and the
bootstrap target maximises over the next state's legal ids only (stored in the buffer): illegal ids
are never trained, so their values are whatever the network extrapolates and must not enter a target.

    python -m baselines.dqn --env idsgame-random_defense-v7
"""

from __future__ import annotations

# ruff: noqa: E402
# Tables first, imports after: run as the program, `cli.start` reads the tables below, answers --help,
# refuses a bad command line and joins a multi-process run before JAX and the game load.
from baselines import cli

ALGO = "dqn"
EVAL_POLICY = "greedy in the learnt Q-values"
ENV_DEFAULTS = {"env": "idsgame-random_defense-v7", "total_timesteps": 150_000, "num_envs": 16}
HYPERPARAMETERS = {
    "num_steps": (4, "pos", "environment steps per environment between gradient phases"),
    "gradient_steps": (1, "pos", "minibatch steps per update"),
    "batch_size": (128, "pos", "minibatch size"),
    "buffer_size": (50_000, "pos", "replay capacity (transitions per seed)"),
    "learning_starts": (2_000, "nonneg", "transitions collected before learning starts"),
    "lr": (5e-4, "pos", "Adam learning rate"),
    "gamma": (0.99, "unit", "discount"),
    "eps_start": (1.0, "prob", "initial exploration rate"),
    "eps_end": (0.05, "prob", "final exploration rate"),
    "eps_fraction": (0.3, "unit", "fraction of training over which exploration decays linearly"),
    "target_update_every": (50, "pos", "updates between target-network copies"),
    "double_q": (True, "any", "double DQN targets"),
    "max_grad_norm": (10.0, "pos", "gradient clip (global norm)"),
    "reward_scale": (0.1, "pos", "rewards are multiplied by this for learning"),
    "hidden": (128, "pos", "units per hidden layer"),
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

from baselines import env_steps, host_loop, networks, scenarios
from baselines.errors import UsageError
from baselines.trainer import Trainer, plan_updates


def validate(config: dict) -> None:
    """Refuse the settings under which DQN cannot learn."""
    spu = config["num_envs"] * config["num_steps"]
    num_updates, _ = plan_updates(config, spu)
    if config["learning_starts"] > config["buffer_size"]:
        raise UsageError(
            f"--learning-starts {config['learning_starts']} exceeds --buffer-size {config['buffer_size']}: the "
            f"buffer never holds that many transitions, so learning would never start"
        )
    if config["learning_starts"] > num_updates * spu:
        raise UsageError(
            f"--learning-starts {config['learning_starts']} leaves no update to learn in: the run collects "
            f"{num_updates * spu} transitions per seed in updates of {spu}; lower it or raise --total-timesteps"
        )
    if config["target_update_every"] > num_updates:
        raise UsageError(
            f"--target-update-every {config['target_update_every']} exceeds the run's {num_updates} updates: the "
            f"target network would never be updated"
        )
    scenarios.resolve(config)


class Buffer(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    done: jax.Array
    next_mask: jax.Array | None  # legal ids of next_obs (None: unmasked, every id)
    pos: jax.Array  # next write index
    size: jax.Array  # filled entries


class Runner(NamedTuple):
    train_state: TrainState
    target_params: dict
    buffer: Buffer
    env: env_steps.EnvCarry
    rng: jax.Array
    updates: jax.Array


def make_train(config: dict, env, env_params) -> Trainer:
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    capacity = config["buffer_size"]
    masked = config["mask_illegal"]
    n_actions = env.action_space(env_params).n
    obs_shape = env.observation_space(env_params).shape
    network = networks.MLP(n_actions, config["hidden"], config["layers"], "relu")
    tx = optax.chain(optax.clip_by_global_norm(config["max_grad_norm"]), optax.adam(config["lr"]))
    decay_steps = config["eps_fraction"] * num_updates * steps_per_update

    def q_values(params, obs):
        return network.apply(params, networks.preprocess(obs))

    def epsilon(env_steps):
        frac = jnp.clip(env_steps / decay_steps, 0.0, 1.0)
        return config["eps_start"] + frac * (config["eps_end"] - config["eps_start"])

    def choose(params, obs, mask, key, eps):
        q = networks.mask_logits(q_values(params, obs), mask)
        k_explore, k_random = jax.random.split(key)
        logits = networks.mask_logits(jnp.zeros_like(q), mask)
        random_action = jax.random.categorical(k_random, logits)
        explore = jax.random.uniform(k_explore, (obs.shape[0],)) < eps
        return jnp.where(explore, random_action, q.argmax(-1))

    def init(rng):
        rng, k_net, k_env = jax.random.split(rng, 3)
        carry = env_steps.reset_envs(env, env_params, k_env, n_envs)
        params = network.init(k_net, networks.preprocess(carry.obs[:1]))
        ts = TrainState.create(apply_fn=network.apply, params=params, tx=tx)
        buffer = Buffer(
            obs=jnp.zeros((capacity,) + obs_shape, carry.obs.dtype),
            action=jnp.zeros((capacity,), jnp.int32),
            reward=jnp.zeros((capacity,), jnp.float32),
            next_obs=jnp.zeros((capacity,) + obs_shape, carry.obs.dtype),
            done=jnp.zeros((capacity,), jnp.float32),
            next_mask=jnp.ones((capacity, n_actions), bool) if masked else None,
            pos=jnp.int32(0),
            size=jnp.int32(0),
        )
        return Runner(ts, params, buffer, carry, rng, jnp.int32(0))

    def env_step(runner: Runner, _):
        rng, k_act, k_env = jax.random.split(runner.rng, 3)
        mask = env_steps.legal_mask(env, env_params, runner.env, masked)
        eps = epsilon(runner.updates * steps_per_update)
        action = choose(runner.train_state.params, runner.env.obs, mask, k_act, eps)
        carry, step = env_steps.step_envs(env, env_params, runner.env, action, k_env, mask)
        return runner._replace(env=carry, rng=rng), step

    def insert(buffer: Buffer, steps: env_steps.Step) -> Buffer:
        flat = jax.tree.map(lambda x: x.reshape((steps_per_update,) + x.shape[2:]), steps)
        idx = (buffer.pos + jnp.arange(steps_per_update)) % capacity
        return Buffer(
            obs=buffer.obs.at[idx].set(flat.obs),
            action=buffer.action.at[idx].set(flat.action.astype(jnp.int32)),
            reward=buffer.reward.at[idx].set(flat.reward * config["reward_scale"]),
            next_obs=buffer.next_obs.at[idx].set(flat.next_obs),
            done=buffer.done.at[idx].set(flat.done.astype(jnp.float32)),
            next_mask=None if buffer.next_mask is None else buffer.next_mask.at[idx].set(flat.next_mask),
            pos=(buffer.pos + steps_per_update) % capacity,
            size=jnp.minimum(buffer.size + steps_per_update, capacity),
        )

    def loss_fn(params, target_params, b):
        q = jnp.take_along_axis(q_values(params, b.obs), b.action[:, None], axis=1).squeeze(1)
        q_next_target = q_values(target_params, b.next_obs)
        if config["double_q"]:
            best = networks.masked_argmax(q_values(params, b.next_obs), b.next_mask)
            q_next = jnp.take_along_axis(q_next_target, best[:, None], axis=1).squeeze(1)
        else:
            q_next = networks.masked_max(q_next_target, b.next_mask)
        target = b.reward + config["gamma"] * (1.0 - b.done) * jax.lax.stop_gradient(q_next)
        chex.assert_equal_shape([q, target])
        return optax.huber_loss(q, target).mean(), q.mean()

    def gradient_step(carry, key):
        ts, target_params, buffer = carry
        idx = jax.random.randint(key, (config["batch_size"],), 0, jnp.maximum(buffer.size, 1))
        batch = jax.tree.map(lambda x: x[idx], buffer._replace(pos=None, size=None))
        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(ts.params, target_params, batch)
        return (ts.apply_gradients(grads=grads), target_params, buffer), (loss, q_mean)

    def update(runner: Runner):
        runner, steps = jax.lax.scan(env_step, runner, None, n_steps)
        buffer = insert(runner.buffer, steps)
        rng, k_grad = jax.random.split(runner.rng)
        (ts, _, _), (loss, q_mean) = jax.lax.scan(
            gradient_step,
            (runner.train_state, runner.target_params, buffer),
            jax.random.split(k_grad, config["gradient_steps"]),
        )
        learning = buffer.size >= config["learning_starts"]
        ts = jax.tree.map(lambda new, old: jnp.where(learning, new, old), ts, runner.train_state)
        updates = runner.updates + 1
        target_params = optax.periodic_update(ts.params, runner.target_params, updates, config["target_update_every"])
        metrics = {
            **env_steps.episode_metrics(steps),
            # Computed on a sampled minibatch in every update (checked for non-finite values), applied
            # only once `learning`.
            "q_loss": loss.mean(),
            "learning": learning.astype(jnp.float32),
            "q_mean": q_mean.mean(),
            "epsilon": epsilon(runner.updates * steps_per_update),
        }
        return Runner(ts, target_params, buffer, runner.env, rng, updates), metrics

    def act(runner: Runner, obs, mask, key):
        return choose(runner.train_state.params, obs, mask, key, 0.0)

    def probs(runner: Runner, obs, mask):  # `act` is greedy: one-hot on the first best legal id
        q = networks.mask_logits(q_values(runner.train_state.params, obs), mask)
        return jax.nn.one_hot(q.argmax(-1), n_actions, dtype=jnp.float32)

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
