"""The pieces that the policy-gradient trainers (PPO, REINFORCE, actor-critic, self-play) share: the
masked categorical policy and its evaluation action, generalised advantage estimation, the clipped PPO
loss, and PPO's epochs of shuffled minibatches. Pure functions, used inside the compiled programs."""

from __future__ import annotations

from collections.abc import Callable

import distrax
import jax
import jax.numpy as jnp
import optax

from baselines.networks import mask_logits, preprocess


def masked_policy(network):
    """`policy(params, obs, mask) -> (Categorical over legal ids, value)` for an actor-critic network;
    `mask=None` leaves every id possible."""

    def policy(params, obs, mask):
        logits, value = network.apply(params, preprocess(obs))
        return distrax.Categorical(logits=mask_logits(logits, mask)), value

    return policy


def evaluation_act(policy, greedy: bool):
    """The Trainer's `act(runner, obs, mask, key)`: the policy's most likely id when `greedy`, else a
    sample (`runner.train_state` holds the parameters)."""

    def act(runner, obs, mask, key):
        pi, _ = policy(runner.train_state.params, obs, mask)
        return jnp.where(greedy, pi.mode(), pi.sample(seed=key))

    return act


def evaluation_probs(policy, greedy: bool):
    """The Trainer's `probs(runner, obs, mask) -> float32[B, A]`: the exact distribution `evaluation_act`
    samples from (one-hot on the most likely id when `greedy`, else the masked softmax)."""

    def probs(runner, obs, mask):
        pi, _ = policy(runner.train_state.params, obs, mask)
        if greedy:
            return jax.nn.one_hot(pi.mode(), pi.logits.shape[-1], dtype=jnp.float32)
        return pi.probs.astype(jnp.float32)

    return probs


def gae(rewards, dones, values, last_value, gamma: float, lam: float):
    """(advantage, value target), each [T, E], from a rollout's rewards, done flags (float) and values
    [T, E] and the value of the observation after it [E]. Nothing is bootstrapped across a game's end;
    `lam = 1` gives plain n-step returns."""

    def back(carry, x):
        adv_next, value_next = carry
        reward, done, value = x
        delta = reward + gamma * value_next * (1 - done) - value
        adv = delta + gamma * lam * (1 - done) * adv_next
        return (adv, value), adv

    _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), (rewards, dones, values), reverse=True)
    return adv, adv + values


def clipped_loss(pi: distrax.Categorical, value, action, old_log_prob, advantage, target, clip_eps, vf_coef, ent_coef):
    """PPO's clipped surrogate, the value loss and the entropy bonus on one minibatch; advantages are
    normalised within it. Returns `(total, {"actor_loss", "value_loss", "entropy"})`."""
    log_prob = pi.log_prob(action)
    ratio = jnp.exp(log_prob - old_log_prob)
    adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    actor = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
    critic = 0.5 * jnp.square(value - target).mean()
    entropy = pi.entropy().mean()
    total = actor + vf_coef * critic - ent_coef * entropy
    return total, {"actor_loss": actor, "value_loss": critic, "entropy": entropy}


def minibatch_epochs(train_state, batch, loss_fn: Callable, key, epochs: int, num_minibatches: int):
    """`epochs` passes over `batch` (leading axis: samples) in shuffled minibatches, one gradient step
    on `loss_fn(params, minibatch) -> (loss, info)` each. Returns the new train state and the mean info."""
    size = jax.tree.leaves(batch)[0].shape[0]
    mb_size = size // num_minibatches

    def epoch(carry, _):
        ts, rng = carry
        rng, k_perm = jax.random.split(rng)
        perm = jax.random.permutation(k_perm, size)
        shuffled = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, mb_size) + x.shape[1:]), batch)

        def minibatch(ts, b):
            grads, info = jax.grad(loss_fn, has_aux=True)(ts.params, b)
            return ts.apply_gradients(grads=grads), info

        ts, info = jax.lax.scan(minibatch, ts, shuffled)
        return (ts, rng), info

    (train_state, _), info = jax.lax.scan(epoch, (train_state, key), None, epochs)
    return train_state, jax.tree.map(jnp.mean, info)


def ppo_optimizer(config: dict, num_updates: int, num_minibatches: int, epochs: int):
    """PPO's optimiser: the global gradient norm clipped to `max_grad_norm`, then Adam (eps 1e-5) at
    `lr`, annealed linearly to 0 over `num_updates` updates of `num_minibatches x epochs` steps when
    `anneal_lr`."""

    def schedule(count):
        frac = 1.0 - (count // (num_minibatches * epochs)) / num_updates
        return config["lr"] * frac if config["anneal_lr"] else config["lr"]

    return optax.chain(optax.clip_by_global_norm(config["max_grad_norm"]), optax.adam(schedule, eps=1e-5))
