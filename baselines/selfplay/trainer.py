"""The self-play trainer: both players' PPO updates in one compiled loop, pool games against
snapshots or bots, and the league's win-rate statistics (see the package docstring)."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState
from jax.sharding import PartitionSpec as P

from baselines import distributed, policy_gradient
from baselines.networks import preprocess
from baselines.selfplay.config import OPPONENT_BOTS, split_envs
from baselines.selfplay.league import (
    League,
    Pool,
    draw_opponents,
    ema,
    pool_get,
    pool_init,
    pool_insert,
    with_probs,
)
from baselines.selfplay.policies import dist_probs, masks, side_policies
from baselines.trainer import Trainer, plan_updates


class Runner(NamedTuple):
    att: TrainState
    dfn: TrainState
    league: League
    state: Any
    obs: dict
    returns: jax.Array  # [2, num_envs] running returns (attacker, defender)
    update: jax.Array
    rng: jax.Array


class SideBatch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mask: jax.Array | None
    advantage: jax.Array
    target: jax.Array


def make_train(config: dict, env, env_params) -> Trainer:
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    n_pool, n_self = split_envs(config)
    n_side = n_pool + n_self
    n_opp = max(n_pool, 1)  # opponent slots of the pool games (one unused slot without: orbax saves no empty array)
    capacity = config["pool_size"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = plan_updates(config, steps_per_update)
    n_mb, epochs = config["num_minibatches"], config["update_epochs"]
    batch_size = n_side * n_steps
    masked = config["mask_illegal"]
    pols = side_policies(config, env)
    axis = config.get("mesh_axis")  # data-parallel (`baselines.distributed`): sum the league's counts over it
    total = (lambda x: jax.lax.psum(x, axis)) if axis else (lambda x: x)  # noqa: E731
    mean = (lambda tree: jax.tree.map(lambda x: jax.lax.pmean(x, axis), tree)) if axis else (lambda tree: tree)  # noqa: E731

    tx = policy_gradient.ppo_optimizer(config, num_updates, n_mb, epochs)

    def init(rng):
        rng, k_att, k_def, k_env, k_opp = jax.random.split(rng, 5)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, n_envs), env_params)
        p_att = pols["attacker"].network.init(k_att, preprocess(obs["attacker"][:1]))
        p_def = pols["defender"].network.init(k_def, preprocess(obs["defender"][:1]))
        att = TrainState.create(apply_fn=pols["attacker"].network.apply, params=p_att, tx=tx)
        dfn = TrainState.create(apply_fn=pols["defender"].network.apply, params=p_def, tx=tx)
        half = jnp.full((capacity,), 0.5, jnp.float32)
        league = League(
            pool_init(p_att, capacity),
            pool_init(p_def, capacity),
            half,
            half,
            jnp.float32(0.5),
            jnp.full((capacity, capacity), 0.5, jnp.float32),
            jnp.zeros((n_opp,), jnp.int32),
            jnp.zeros((n_opp,), jnp.int32),
            half,
            half,
        )
        league = with_probs(config, league)
        k1, k2 = jax.random.split(k_opp)
        league = league._replace(
            att_opp=draw_opponents(k1, config, league, "attacker", n_opp),
            def_opp=draw_opponents(k2, config, league, "defender", n_opp),
        )
        returns = jnp.zeros((2, n_envs), jnp.float32)
        return Runner(att, dfn, league, state, obs, returns, jnp.int32(0), rng)

    def opponent_actions(key, side, pool: Pool, opp, state, obs, mask):
        """Actions of the pool opponents (snapshots or bots) of the learner `side` in its pool games."""
        other = "defender" if side == "attacker" else "attacker"
        k_pol, k_bot = jax.random.split(key)
        params = pool_get(pool, jnp.minimum(opp, capacity - 1))

        def one(p, o, m, k):
            d, _ = pols[other].dist(p, o[None], None if m is None else m[None])
            return d.sample(seed=k)[0]

        keys = jax.random.split(k_pol, n_pool)
        snap = jax.vmap(one, in_axes=(0, 0, None if mask is None else 0, 0))(params, obs, mask, keys)
        bot_keys = jax.random.split(k_bot, n_pool)
        bots = (
            [
                jax.vmap(lambda k, s, b=b: env.bot_action(b, k, s, env_params))(bot_keys, state)
                for b in OPPONENT_BOTS[side]
            ]
            if config["bot_share"] > 0
            else []
        )  # static: no bot, no code
        action = snap
        for b, a in enumerate(bots):
            action = jnp.where(opp == capacity + b, a, action)
        return action.astype(jnp.int32)

    sl = lambda x, a, b: jax.tree.map(lambda v: v[a:b], x)  # noqa: E731

    def env_step(runner: Runner, _):
        rng, k_att, k_def, k_oa, k_od, k_env, k_new_a, k_new_d = jax.random.split(runner.rng, 8)
        lg = runner.league
        mk = masks(env, env_params, runner.state, masked)
        obs = runner.obs
        pi_a, v_a = pols["attacker"].dist(runner.att.params, obs["attacker"], mk["attacker"])
        pi_d, v_d = pols["defender"].dist(runner.dfn.params, obs["defender"], mk["defender"])
        a_att, a_def = pi_a.sample(seed=k_att), pi_d.sample(seed=k_def)
        lp_att, lp_def = pi_a.log_prob(a_att), pi_d.log_prob(a_def)
        if n_pool:
            # attacker learner's pool games [0, n_pool): the defender is a pool opponent
            lo = n_envs - n_pool
            opp_def = opponent_actions(
                k_oa,
                "attacker",
                lg.def_pool,
                lg.att_opp,
                sl(runner.state, 0, n_pool),
                obs["defender"][:n_pool],
                None if mk["defender"] is None else mk["defender"][:n_pool],
            )
            opp_att = opponent_actions(
                k_od,
                "defender",
                lg.att_pool,
                lg.def_opp,
                sl(runner.state, lo, n_envs),
                obs["attacker"][lo:],
                None if mk["attacker"] is None else mk["attacker"][lo:],
            )
            act_att = jnp.concatenate([a_att[:lo], opp_att])
            act_def = jnp.concatenate([opp_def, a_def[n_pool:]])
        else:
            act_att, act_def = a_att, a_def
        obs2, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n_envs), runner.state, {"attacker": act_att, "defender": act_def}, env_params
        )
        done = term | trunc
        r = jnp.stack([reward["attacker"], reward["defender"]])
        returns = runner.returns + r
        ep_returns = jnp.where(done, returns, 0.0)
        hacked = info["hacked"] & done
        if n_pool:
            fa = done[:n_pool]
            fd = done[n_envs - n_pool :]
            lg = lg._replace(
                att_opp=jnp.where(fa, draw_opponents(k_new_a, config, lg, "attacker", n_pool), lg.att_opp),
                def_opp=jnp.where(fd, draw_opponents(k_new_d, config, lg, "defender", n_pool), lg.def_opp),
            )
        out = {
            "obs": obs,
            "mask": mk,
            "action": {"attacker": a_att, "defender": a_def},
            "log_prob": {"attacker": lp_att, "defender": lp_def},
            "value": {"attacker": v_a, "defender": v_d},
            "reward": {"attacker": reward["attacker"], "defender": reward["defender"]},
            "done": done,
            "hacked": hacked,
            "ep_returns": ep_returns,
            "att_opp": runner.league.att_opp,
            "def_opp": runner.league.def_opp,
        }
        runner = runner._replace(league=lg, state=state, obs=obs2, returns=jnp.where(done, 0.0, returns), rng=rng)
        return runner, out

    def loss_fn(params, b: SideBatch, side):
        pi, value = pols[side].dist(params, b.obs, b.mask)
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

    def ppo_update(ts: TrainState, side: str, traj: dict, lo: int, hi: int, last_obs, last_mask, key):
        """One PPO update of `side` on the games [lo, hi) of the rollout."""
        cut = lambda x: None if x is None else x[:, lo:hi]  # noqa: E731
        _, last_value = pols[side].dist(ts.params, last_obs[lo:hi], None if last_mask is None else last_mask[lo:hi])
        rewards = cut(traj["reward"][side]) * config["reward_scale"]
        adv, target = policy_gradient.gae(
            rewards,
            cut(traj["done"]).astype(jnp.float32),
            cut(traj["value"][side]),
            last_value,
            config["gamma"],
            config["gae_lambda"],
        )
        batch = SideBatch(
            cut(traj["obs"][side]),
            cut(traj["action"][side]),
            cut(traj["log_prob"][side]),
            cut(traj["mask"][side]),
            adv,
            target,
        )
        chex.assert_shape([adv, target], (n_steps, hi - lo))
        batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)
        return policy_gradient.minibatch_epochs(ts, batch, lambda p, b: loss_fn(p, b, side), key, epochs, n_mb)

    def update(runner: Runner):
        runner, traj = jax.lax.scan(env_step, runner, None, n_steps)
        rng, k_att, k_def = jax.random.split(runner.rng, 3)
        mk = masks(env, env_params, runner.state, masked)
        att, info_a = ppo_update(runner.att, "attacker", traj, 0, n_side, runner.obs["attacker"], mk["attacker"], k_att)
        dfn, info_d = ppo_update(
            runner.dfn, "defender", traj, n_pool, n_envs, runner.obs["defender"], mk["defender"], k_def
        )
        info_a, info_d = mean(info_a), mean(info_d)

        # win-rate statistics of the league
        lg = runner.league
        done, hacked = traj["done"], traj["hacked"].astype(jnp.float32)
        alpha = config["rate_ema"]
        s_done, s_hack = done[:, n_pool : n_envs - n_pool], hacked[:, n_pool : n_envs - n_pool]
        finished, self_hacks = total(s_done.sum()), total(s_hack.sum())
        self_rate = ema(lg.self_rate, self_hacks, finished, alpha)
        metrics = {}
        if n_pool:

            def per_opp(opp, d, h):
                idx = jnp.where(d, opp, capacity + 2)  # finished games only; bots and others dropped
                games = jnp.zeros((capacity + 3,)).at[idx.reshape(-1)].add(1.0)[:capacity]
                wins = jnp.zeros((capacity + 3,)).at[idx.reshape(-1)].add(h.reshape(-1))[:capacity]
                return total(wins), total(games)

            da, ha = done[:, :n_pool], hacked[:, :n_pool]
            dd, hd = done[:, n_envs - n_pool :], hacked[:, n_envs - n_pool :]
            att_rate = ema(lg.att_rate, *per_opp(traj["att_opp"], da, ha), alpha)
            def_rate = ema(lg.def_rate, *per_opp(traj["def_opp"], dd, hd), alpha)
            for name, d, h in (("att", da, ha), ("def", dd, hd)):
                games, wins = total(d.sum()), total(h.sum())
                metrics[f"{name}_pool_hack_probability"] = jnp.where(games > 0, wins / jnp.maximum(games, 1), jnp.nan)
        else:
            att_rate, def_rate = lg.att_rate, lg.def_rate

        # snapshots of both players every `snapshot_every` updates, into the same slot
        u = runner.update + 1
        snap = (u % config["snapshot_every"]) == 0
        att_pool, slot = pool_insert(lg.att_pool, att.params, snap)
        def_pool, _ = pool_insert(lg.def_pool, dfn.params, snap)
        hit = (jnp.arange(capacity) == slot) & snap
        payoff = jnp.where(hit[:, None], att_rate[None, :], lg.payoff)  # row: new attacker vs defenders
        payoff = jnp.where(hit[None, :], def_rate[:, None], payoff)  # column: attackers vs new defender
        payoff = jnp.where(hit[:, None] & hit[None, :], self_rate, payoff)
        att_rate = jnp.where(hit, self_rate, att_rate)
        def_rate = jnp.where(hit, self_rate, def_rate)
        lg = lg._replace(
            att_pool=att_pool,
            def_pool=def_pool,
            att_rate=att_rate,
            def_rate=def_rate,
            self_rate=self_rate,
            payoff=payoff,
        )
        lg = with_probs(config, lg) if n_pool else lg

        denom = jnp.maximum(finished, 1)
        some = finished > 0
        ep = traj["ep_returns"][:, :, n_pool : n_envs - n_pool]
        att_return, def_return = total(ep[:, 0].sum()), total(ep[:, 1].sum())
        metrics = {
            "episodes": finished.astype(jnp.int32),
            "hack_probability": jnp.where(some, self_hacks / denom, jnp.nan),
            "return": jnp.where(some, att_return / denom, jnp.nan),  # the attacker's
            "attacker_return": jnp.where(some, att_return / denom, jnp.nan),
            "defender_return": jnp.where(some, def_return / denom, jnp.nan),
            **metrics,
            "pool_size": lg.att_pool.valid.sum().astype(jnp.int32),
            **{f"att_{k}": v for k, v in info_a.items()},
            **{f"def_{k}": v for k, v in info_d.items()},
        }
        return runner._replace(att=att, dfn=dfn, league=lg, update=u, rng=rng), metrics

    def act(runner: Runner, obs, mask, key):  # the attacker's policy (the Trainer contract has one)
        pi, _ = pols["attacker"].dist(runner.att.params, obs, mask)
        return pi.sample(seed=key)

    return Trainer(
        init=init,
        update=update,
        act=act,
        num_updates=num_updates,
        steps_per_update=steps_per_update,
    )


def side_policy(config: dict, env, runner: Runner, side: str):
    """One side's evaluation policy of a (single-seed) runner, as `checkpoints.load_run` needs it:
    `(act(key, obs[B], mask | None) -> ids[B], probs(obs[B], mask | None) -> float32[B, ids])`."""
    pol = side_policies(config, env)[side]
    params = runner.att.params if side == "attacker" else runner.dfn.params

    def act(key, obs, mask):
        d, _ = pol.dist(params, obs, mask)
        return d.sample(seed=key)

    def probs(obs, mask):
        d, _ = pol.dist(params, obs, mask)
        return dist_probs(d)

    return act, probs


def mesh_layout(config: dict):
    """How self-play's runner lies on a device mesh (`baselines.distributed.make_train`): each device
    plays its share of the games (and their running returns and pool opponents) in the three groups of
    a run of its own size; both learners are device 0's, with averaged gradients; the league (pools,
    win rates, payoff matrix) is one, because the trainer sums its counts over the devices
    (`mesh_axis`), and so are the metrics."""
    local_pool, _ = split_envs(distributed.local_config(config, config.get("devices", 1)))
    games = P(distributed.AXIS)
    # Without pool games the opponents are one unused slot, the same shape as a one-device run's.
    opponents = games if local_pool else P()

    def specs(shape: Runner) -> Runner:
        league = League(*(P() for _ in League._fields))._replace(att_opp=opponents, def_opp=opponents)
        return Runner(P(), P(), league, games, games, P(None, distributed.AXIS), P(), P())

    def replicate(runner: Runner) -> Runner:
        lg = runner.league
        league = distributed.from_first_device(lg)._replace(att_opp=lg.att_opp, def_opp=lg.def_opp)
        return runner._replace(
            att=distributed.averaged_learner(runner.att), dfn=distributed.averaged_learner(runner.dfn), league=league
        )

    return distributed.Layout(specs, replicate, lambda metrics: metrics)
