"""The autocurriculum trainer: PPO on levels chosen by domain randomisation, PLR, robust PLR or ACCEL.

One update (jaxued's single-file scripts, in one program per seed):

1. choose this update's kind and its `num_envs` levels: *new* (fresh draws of the family, outside
   the held-out hashes), *replay* (jaxued's `LevelSampler.sample_replay_levels`, rank and staleness
   prioritised) or, for ACCEL only, *mutate* (`idsjax.scenario.mutations` edits of the levels the
   previous update replayed). DR: always new. PLR, robust PLR: replay with probability
   `--replay-prob` once the buffer is `--min-fill` full. ACCEL: robust PLR, and after every replay a
   mutate update;
2. play `num_steps` steps on them, each game replaying its level after every episode (jaxued's
   `AutoReplayWrapper`; every update starts fresh games on its levels);
3. GAE per learning side, and each level's regret score: positive value loss (the mean over each
   episode of max(advantage, 0), averaged over the level's finished episodes: jaxued's
   `positive_value_loss`) or maximum Monte Carlo (the best return seen on the level less the value
   estimate: `max_mc`). A level with no finished episode scores the floor. With both sides learning
   the level's score is the mean of the two sides' regrets (a level is worth replaying where either
   player still has something to learn; the floor if either side finished no episode);
4. PPO's clipped update of each learner (`baselines.policy_gradient`), applied on every update for
   DR and PLR, on replay updates only for robust PLR and ACCEL (no gradient on fresh or edited levels);
5. the buffer: new and mutated levels inserted by score (`LevelSampler.insert_batch`; a level
   already buffered is rescored in place, not added twice), replayed levels' scores and best returns updated (`update_batch`).

Every kind computes all three level choices and one rollout, and selects: under `vmap` over seeds a
`lax.cond` would run every branch anyway. On several devices (`--devices`), every device draws the
same levels from the replicated level key, plays its share of the games, and the scores are gathered
before the buffer's update, so the buffer stays one; gradients are averaged (`baselines.distributed`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

from baselines import distributed, env_steps, policy_gradient
from baselines.trainer import Trainer, plan_updates
from baselines.ued import levels as lv
from idsjax.env import ATTACKER, DEFENDER
from idsjax.scenario.generated import GeneratedEnv

NEW, REPLAY, MUTATE = 0, 1, 2
# The score of a level with no finished episode (jaxued uses -inf): finite, because the host loop
# stops a run whose state holds a non-finite float, and below any real regret.
SCORE_FLOOR = -1e30
# The single-learner game each side's policy is shaped on (both sides: the two halves of the game).
SIDE_MODES = {ATTACKER: "minimal_defense", DEFENDER: "maximal_attack"}


class Runner(NamedTuple):
    train_state: tuple  # one TrainState per learning side (attacker first)
    rng: jax.Array  # the games' and policies' randomness (per device under --devices)
    level_rng: jax.Array  # the levels' choices (the same on every device)
    sampler: dict  # jaxued's LevelSampler state: the level buffer
    replayed: jax.Array  # int32[num_envs (all devices)]: the buffer slots the last replay played
    last_kind: jax.Array  # int32: NEW, REPLAY or MUTATE


def sides_of(config: dict) -> tuple[str, ...]:
    return (ATTACKER, DEFENDER) if config["side"] == "both" else (config["side"],)


def level_sampler(config: dict) -> lv.LevelSampler:
    return lv.LevelSampler(
        capacity=config["buffer_size"],
        replay_prob=config["replay_prob"],
        staleness_coeff=config["staleness_coeff"],
        minimum_fill_ratio=config["min_fill"],
        prioritization="rank",
        prioritization_params={"temperature": config["temperature"]},
        duplicate_check=True,
    )


def train_params(env: GeneratedEnv, env_params, config: dict):
    """The params new levels are drawn with: outside the held-out hashes where `config` holds them."""
    hashes = config.get("_heldout_hashes")
    return env_params if hashes is None else env.excluding(hashes, env_params)


def make_train(config: dict, env: GeneratedEnv, env_params) -> Trainer:
    from baselines import ppo  # the policies of --network (ppo's own, built the same way)

    sides = sides_of(config)
    axis = config.get("mesh_axis")
    n_dev = int(config.get("devices", 1)) if axis else 1
    n_envs, n_steps = config["num_envs"], config["num_steps"]  # this device's games
    n_global = n_envs * n_dev
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    n_mb, epochs = config["num_minibatches"], config["update_epochs"]
    masked, method = config["mask_illegal"], config["method"]
    params = train_params(env, env_params, config)
    level_env = lv.LevelEnv(env)
    replay_env = lv.AutoReplayWrapper(level_env)
    sampler_def = level_sampler(config)
    nodes = config.get("network") == "nodes"

    tx = policy_gradient.ppo_optimizer(config, num_updates, n_mb, epochs)
    policies = {}
    for side in sides:
        shaped = GeneratedEnv(env.family, SIDE_MODES[side]) if len(sides) > 1 else env
        policies[side] = ppo.actor_critic(config, shaped, shaped.default_params, shaped.action_space().n)

    def half(x, side):
        return x[side] if len(sides) > 1 else x

    def level_extra(n=None):
        shape = (len(sides),) if n is None else (n, len(sides))
        return {"max_return": jnp.zeros(shape, jnp.float32)}

    def init(rng):
        rng, k_level, k_draw, *k_nets = jax.random.split(rng, 3 + len(sides))
        placeholder = lv.draw_level(env, k_draw, params)
        obs, _ = level_env.reset_to_level(k_draw, placeholder, params)
        states = []
        for side, k in zip(sides, k_nets):
            init_params, policy = policies[side]
            one = jax.tree.map(lambda x: x[None], half(obs, side))
            states.append(TrainState.create(apply_fn=policy, params=init_params(k, one), tx=tx))
        sampler = sampler_def.initialize(placeholder, level_extra())
        sampler = {
            **sampler,
            "scores": jnp.full_like(sampler["scores"], SCORE_FLOOR),
            "size": jnp.int32(0),
            "episode_count": jnp.int32(0),
        }
        return Runner(tuple(states), rng, k_level, sampler, jnp.zeros((n_global,), jnp.int32), jnp.int32(NEW))

    def choose_levels(runner: Runner):
        """(kind, levels [n_global], replay sampler, replay slots, edits applied [n_global])."""
        k_level, k_decide, k_new, k_replay, k_edit = jax.random.split(runner.level_rng, 5)
        sampler = runner.sampler
        new = jax.vmap(lv.draw_level, in_axes=(None, 0, None))(env, jax.random.split(k_new, n_global), params)
        if method == "dr":
            return k_level, jnp.int32(NEW), new, sampler, runner.replayed, jnp.zeros((n_global,), jnp.int32)
        replay = sampler_def.sample_replay_decision(sampler, k_decide)
        replay_sampler, (slots, replayed) = sampler_def.sample_replay_levels(sampler, k_replay, n_global)
        kind = jnp.where(replay, REPLAY, NEW).astype(jnp.int32)
        levels = jax.tree.map(lambda r, n: jnp.where(replay, r, n), replayed, new)
        edits = jnp.zeros((n_global,), jnp.int32)
        if method == "accel":
            parents = sampler_def.get_levels(sampler, runner.replayed)
            children, edits = jax.vmap(lv.mutate_level, in_axes=(None, 0, 0, None, None))(
                env, jax.random.split(k_edit, n_global), parents, config["num_edits"], params
            )
            mutating = runner.last_kind == REPLAY
            kind = jnp.where(mutating, MUTATE, kind).astype(jnp.int32)
            levels = jax.tree.map(lambda c, x: jnp.where(mutating, c, x), children, levels)
            edits = jnp.where(mutating, edits, 0)
        return k_level, kind, levels, replay_sampler, slots, edits

    def local_share(x):
        """This device's games of a global [n_global, ...] array."""
        if n_dev == 1:
            return x
        start = jax.lax.axis_index(axis) * n_envs
        return jax.lax.dynamic_slice_in_dim(x, start, n_envs, axis=0)

    def gather(x):
        return x if n_dev == 1 else jax.lax.all_gather(x, axis, axis=0, tiled=True)

    def rollout(runner: Runner, levels, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(replay_env.reset_to_level, in_axes=(0, 0, None))(
            jax.random.split(k_reset, n_envs), levels, params
        )

        def step(carry, k):
            obs, state, tracker = carry
            k_env, *k_act = jax.random.split(k, 1 + len(sides))
            masks = env_steps.legal_mask(level_env, params, env_steps.EnvCarry(state.env_state, obs, None), masked)
            actions, out = {}, {}
            for side, ts, ka in zip(sides, runner.train_state, k_act):
                mask = None if masks is None else half(masks, side)
                pi, value = policies[side][1](ts.params, half(obs, side), mask)
                actions[side] = pi.sample(seed=ka)
                out[side] = (half(obs, side), actions[side], pi.log_prob(actions[side]), value, mask)
            action = actions if len(sides) > 1 else actions[sides[0]]
            next_obs, state, reward, done, info = jax.vmap(replay_env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_env, n_envs), state, action, params
            )
            rewards = {side: half(reward, side) for side in sides}
            t = tracker
            ret = env_steps.EpisodeTracker(
                t.learner + rewards[sides[0]],
                t.attacker + info["attacker_reward"],
                t.defender + info["defender_reward"],
            )
            record = {
                "sides": out,
                "rewards": rewards,
                "done": done,
                "hacked": info["hacked"] & done,
                "ep": tuple(jnp.where(done, r, 0.0) for r in ret),
            }
            ret = env_steps.EpisodeTracker(*(jnp.where(done, 0.0, r) for r in ret))
            return (next_obs, state, ret), record

        carry = (obs, state, env_steps.EpisodeTracker.zeros(n_envs))
        (obs, state, _), records = jax.lax.scan(step, carry, jax.random.split(k_run, n_steps))
        last_masks = env_steps.legal_mask(level_env, params, env_steps.EnvCarry(state.env_state, obs, None), masked)
        last_values = {}
        for side, ts in zip(sides, runner.train_state):
            # The node policy reads the legal ids as input, so its bootstrap value sees them too.
            mask = half(last_masks, side) if (nodes and last_masks is not None) else None
            last_values[side] = policies[side][1](ts.params, half(obs, side), mask)[1]
        return records, last_values

    def score_and_learn(runner: Runner, records, last_values, max_return_before, key):
        done = records["done"]
        scores, max_returns, new_states, infos = [], [], [], {}
        for i, (side, ts) in enumerate(zip(sides, runner.train_state)):
            obs, action, log_prob, value, mask = records["sides"][side]
            rewards = records["rewards"][side] * config["reward_scale"]
            advantage, target = policy_gradient.gae(
                rewards, done.astype(jnp.float32), value, last_values[side], config["gamma"], config["gae_lambda"]
            )
            max_return = jnp.maximum(max_return_before[:, i], lv.compute_max_returns(done, rewards))
            if config["score"] == "pvl":
                score = lv.positive_value_loss(done, advantage, incomplete_value=SCORE_FLOOR)
            else:
                score = lv.max_mc(done, value, max_return, incomplete_value=SCORE_FLOOR)
            scores.append(score)
            max_returns.append(max_return)

            def loss_fn(p, b, policy=policies[side][1]):
                pi, v = policy(p, b[0], b[3])
                return policy_gradient.clipped_loss(
                    pi, v, b[1], b[2], b[4], b[5], config["clip_eps"], config["vf_coef"], config["ent_coef"]
                )

            batch = (obs, action, log_prob, mask, advantage, target)
            batch = jax.tree.map(lambda x: x.reshape((steps_per_update,) + x.shape[2:]), batch)
            new_ts, info = policy_gradient.minibatch_epochs(
                ts, batch, loss_fn, jax.random.fold_in(key, i), epochs, n_mb
            )
            new_states.append(new_ts)
            prefix = "" if i == 0 else f"{side}_"
            infos.update({prefix + k: v for k, v in info.items()})
        stacked = jnp.stack(scores, axis=-1)  # [n_envs, sides]
        complete = (stacked > SCORE_FLOOR).all(axis=-1)
        score = jnp.where(complete, stacked.mean(axis=-1), SCORE_FLOOR)
        return score, jnp.stack(max_returns, axis=-1), new_states, infos

    def update(runner: Runner):
        k_level, kind, levels, replay_sampler, slots, edits = choose_levels(runner)
        rng, k_play, k_learn = jax.random.split(runner.rng, 3)
        extras = sampler_def.get_levels_extra(runner.sampler, slots)["max_return"]
        # Best returns seen before: the buffer's for replayed levels, none for new or edited ones.
        before = jnp.where(kind == REPLAY, extras, -jnp.inf)
        records, last_values = rollout(runner, jax.tree.map(local_share, levels), k_play)
        score, max_return, new_states, infos = score_and_learn(
            runner, records, last_values, local_share(before), k_learn
        )
        score, max_return = gather(score), gather(max_return)
        max_return = jnp.where(jnp.isfinite(max_return), max_return, 0.0)  # no episode: nothing seen
        learns = jnp.bool_(True) if method in ("dr", "plr") else kind == REPLAY
        states = tuple(
            jax.tree.map(lambda new, old: jnp.where(learns, new, old), n, o)
            for n, o in zip(new_states, runner.train_state)
        )
        sampler = runner.sampler
        if method != "dr":
            inserted, _ = sampler_def.insert_batch(sampler, levels, score, {"max_return": max_return})
            updated = sampler_def.update_batch(replay_sampler, slots, score, {"max_return": max_return})
            sampler = jax.tree.map(lambda u, i: jnp.where(kind == REPLAY, u, i), updated, inserted)
        replayed = jnp.where(kind == REPLAY, slots, runner.replayed)
        # Buffered levels with a real score (a replay that finished no episode leaves the floor).
        filled = (jnp.arange(sampler_def.capacity) < sampler["size"]) & (sampler["scores"] > SCORE_FLOOR)
        real = score > SCORE_FLOOR
        steps = env_steps.Step(
            *([None] * 8),
            hacked=records["hacked"],
            ep_return=records["ep"][0],
            ep_attacker=records["ep"][1],
            ep_defender=records["ep"][2],
        )._replace(finished=records["done"])
        metrics = {
            **env_steps.episode_metrics(steps),
            **infos,
            "replay": (kind == REPLAY).astype(jnp.float32),
            "mutate": (kind == MUTATE).astype(jnp.float32),
            "learned": learns.astype(jnp.float32),
            "level_score": jnp.where(real.any(), jnp.where(real, score, 0.0).sum() / jnp.maximum(real.sum(), 1), jnp.nan),
            "buffer_size": sampler["size"].astype(jnp.float32),
            "buffer_score": jnp.where(filled.any(), jnp.where(filled, sampler["scores"], 0.0).sum() / jnp.maximum(filled.sum(), 1), jnp.nan),
            "edits": jnp.where(kind == MUTATE, edits.mean(), jnp.nan),
            "level_nodes": jnp.mean(levels.scenario.node_mask.sum(axis=-1).astype(jnp.float32)),
        }  # fmt: skip
        return Runner(states, rng, k_level, sampler, replayed, kind), metrics

    def act(runner: Runner, obs, mask, key):
        keys = jax.random.split(key, len(sides))
        out = {}
        for side, ts, k in zip(sides, runner.train_state, keys):
            pi, _ = policies[side][1](ts.params, half(obs, side), None if mask is None else half(mask, side))
            out[side] = jnp.where(config["eval_greedy"], pi.mode(), pi.sample(seed=k))
        return out if len(sides) > 1 else out[sides[0]]

    return Trainer(init=init, update=update, act=act, num_updates=num_updates, steps_per_update=steps_per_update)


# -- several devices (`--devices`): nothing of a runner is a device's share -----------------------------
def _specs(runner_shape: Any) -> Any:
    """One replicated spec for the whole runner (a prefix): the games live inside an update, the
    learners and the buffer are the same on every device."""
    from jax.sharding import PartitionSpec as P

    del runner_shape
    return P()


def _replicate(runner: Runner) -> Runner:
    """Device 0's learners (with gradients averaged over the devices) and level key on every device."""
    states = tuple(distributed.averaged_learner(ts) for ts in runner.train_state)
    return runner._replace(train_state=states, level_rng=distributed.from_first_device(runner.level_rng))


MESH_LAYOUT = distributed.Layout(_specs, _replicate, distributed.combine_metrics)
