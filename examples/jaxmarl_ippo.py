"""Independent PPO for both players of a two-agent id, through the JaxMARL view and its LogWrapper.

    python examples/jaxmarl_ippo.py --env idsgame-v0 --updates 60

Each player has its own actor-critic network and PPO update (clipped surrogate, GAE), sees only its
own observation and samples only legal ids (`get_avail_actions`). The whole run is one jitted
program. Afterwards each trained player meets a uniformly random legal opponent, and both are
compared with random play against random play: the attacker has learnt if it hacks more often than
a random attacker does, the defender if it lets a random attacker hack less often.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jaxmarl.wrappers.baselines import LogWrapper

from idsjax.marl import AGENTS, IdsGameMARL


class ActorCritic(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, obs, mask):
        x = obs.reshape(obs.shape[:-2] + (-1,)).astype(jnp.float32) / 10.0
        x = nn.tanh(nn.Dense(64)(x))
        x = nn.tanh(nn.Dense(64)(x))
        logits = jnp.where(mask, nn.Dense(self.num_actions)(x), -1e9)
        return logits, nn.Dense(1)(x)[..., 0]


class Transition(NamedTuple):
    obs: dict
    mask: dict
    action: dict
    log_prob: dict
    value: dict
    reward: dict
    done: jax.Array


def make_train(
    env_id: str,
    num_envs: int,
    num_steps: int,
    updates: int,
    lr: float = 3e-3,
    gamma: float = 0.95,
    gae_lambda: float = 0.9,
    clip: float = 0.2,
    epochs: int = 4,
    ent_coef: float = 0.01,
):
    env = LogWrapper(IdsGameMARL(env_id))
    nets = {a: ActorCritic(env.action_space(a).n) for a in AGENTS}
    opt = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lr))

    def policy(params, obs, mask, key):
        out = {}
        for a, k in zip(AGENTS, jax.random.split(key)):
            logits, value = nets[a].apply(params[a], obs[a], mask[a])
            action = jax.random.categorical(k, logits)
            log_prob = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
            out[a] = (action, log_prob, value)
        return out

    def train(key):
        k_init, k_reset, key = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs))
        params = {
            a: nets[a].init(k, jax.tree.map(lambda x: x[:1], obs[a]), jnp.ones((1, env.action_space(a).n), bool))
            for a, k in zip(AGENTS, jax.random.split(k_init))
        }
        opt_state = opt.init(params)

        def env_step(carry, k):
            params, obs, state = carry
            k_act, k_step = jax.random.split(k)
            mask = jax.vmap(env.get_avail_actions)(state.env_state)
            out = policy(params, obs, mask, k_act)
            action = {a: out[a][0] for a in AGENTS}
            next_obs, state, reward, dones, info = jax.vmap(env.step)(jax.random.split(k_step, num_envs), state, action)
            t = Transition(
                obs,
                mask,
                action,
                {a: out[a][1] for a in AGENTS},
                {a: out[a][2] for a in AGENTS},
                reward,
                dones["__all__"],
            )
            return (params, next_obs, state), (t, info)

        def loss(p, a, t, advantage, target):
            logits, value = nets[a].apply(p, t.obs[a], t.mask[a])
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), t.action[a][..., None], -1)[..., 0]
            ratio = jnp.exp(log_prob - t.log_prob[a])
            adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            actor = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv).mean()
            probs = jax.nn.softmax(logits)
            entropy = -jnp.sum(jnp.where(t.mask[a], probs * jax.nn.log_softmax(logits), 0.0), -1).mean()
            return actor + 0.5 * ((value - target) ** 2).mean() - ent_coef * entropy

        def update(carry, k):
            params, opt_state, obs, state = carry
            (params, obs, state), (traj, info) = jax.lax.scan(
                env_step, (params, obs, state), jax.random.split(k, num_steps)
            )
            last = policy(params, obs, jax.vmap(env.get_avail_actions)(state.env_state), k)
            advantages, targets = {}, {}
            for a in AGENTS:

                def gae(carry, t, a=a):
                    adv, next_value = carry
                    delta = t.reward[a] + gamma * next_value * (1 - t.done) - t.value[a]
                    adv = delta + gamma * gae_lambda * (1 - t.done) * adv
                    return (adv, t.value[a]), adv

                _, adv = jax.lax.scan(gae, (jnp.zeros(num_envs), last[a][2]), traj, reverse=True)
                advantages[a], targets[a] = adv, adv + traj.value[a]

            def epoch(carry, _):
                params, opt_state = carry
                grads = {a: jax.grad(loss)(params[a], a, traj, advantages[a], targets[a]) for a in AGENTS}
                updates, opt_state = opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state), None, epochs)
            ended = info["returned_episode"][..., 0]
            hacked = jnp.sum(info["hacked"][..., 0] & traj.done) / jnp.maximum(jnp.sum(traj.done), 1)
            return (params, opt_state, obs, state), (jnp.sum(ended), hacked)

        (params, *_), metrics = jax.lax.scan(update, (params, opt_state, obs, state), jax.random.split(key, updates))
        return params, metrics

    return env, nets, train


def hack_probability(env, nets, params, key, attacker_trained: bool, defender_trained: bool, games: int = 1000):
    """The fraction of `games` that end in a hack; untrained players pick uniformly among legal ids."""
    limit = int(env.params.max_steps_in_episode)

    def act(a, trained, obs, mask, k):
        logits = (
            nets[a].apply(params[a], obs[a][None], mask[a][None])[0][0] if trained else jnp.where(mask[a], 0.0, -1e9)
        )
        return jax.random.categorical(k, logits)

    def game(k):
        k_reset, k = jax.random.split(k)
        obs, state = env.reset(k_reset)

        def step(carry, k):
            obs, state, over, hacked = carry
            k_a, k_d, k_s = jax.random.split(k, 3)
            mask = env.get_avail_actions(state.env_state)
            action = {
                "attacker": act("attacker", attacker_trained, obs, mask, k_a),
                "defender": act("defender", defender_trained, obs, mask, k_d),
            }
            obs, state, _, dones, info = env.step(k_s, state, action)
            hacked = hacked | (~over & info["hacked"][0])
            return (obs, state, over | dones["__all__"], hacked), None

        (_, _, _, hacked), _ = jax.lax.scan(step, (obs, state, False, False), jax.random.split(k, limit))
        return hacked

    return float(jnp.mean(jax.jit(jax.vmap(game))(jax.random.split(key, games))))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="idsgame-v0", help="a two-agent id idsgame-vN")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--num-steps", type=int, default=32)
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-games", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.env.startswith("idsgame-v"):
        parser.exit(2, f"--env must be a two-agent id idsgame-vN, got {args.env!r}\n")
    env, nets, train = make_train(args.env, args.num_envs, args.num_steps, args.updates)
    key, k_eval = jax.random.split(jax.random.PRNGKey(args.seed))
    params, (episodes, hacked) = jax.jit(train)(key)
    result = {
        "env": args.env,
        "episodes": int(episodes.sum()),
        "train_hack_probability_first_last": [float(hacked[0]), float(hacked[-1])],
        "random_vs_random": hack_probability(env, nets, params, k_eval, False, False, args.eval_games),
        "trained_attacker_vs_random": hack_probability(env, nets, params, k_eval, True, False, args.eval_games),
        "random_attacker_vs_trained_defender": hack_probability(
            env, nets, params, k_eval, False, True, args.eval_games
        ),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
