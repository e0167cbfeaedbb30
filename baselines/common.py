"""What every baseline shares: the command line, networks, episode bookkeeping, evaluation, metrics,
plots, checkpoints and the host loop that drives a compiled trainer.

An algorithm module provides `ALGO` (its name), `HYPERPARAMETERS` (name -> (default, check, help)),
`ENV_DEFAULTS` (defaults of the common options it overrides) and `make_train(config, env, params)`
returning a `Trainer`. `run(module, argv)` does the rest.

Trainer contract (PureJaxRL style): `init(rng) -> runner` and `update(runner) -> (runner, metrics)`
are pure; `train(rng)` is the whole run as one program (`init` then a `lax.scan` of `update`);
`act(runner, obs, mask, key) -> actions` is the policy to evaluate. The host loop jits
`vmap(scan of K updates)` over seeds and loops on chunks, which gives the progress bar, the metrics
file and the checkpoint points without host callbacks inside the compiled program. A chunked run and
`train` play the same episodes (tests check it; losses agree up to float rounding).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
import warnings
from typing import Any, Callable, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import idsjax

# --- command line ---------------------------------------------------------------------------------

COMMON_DEFAULTS: dict[str, Any] = {
    "env": "idsgame-minimal_defense-v7",
    "total_timesteps": 1_000_000,
    "num_envs": 64,
    "num_seeds": 1,
    "seed": 0,
    "output_dir": None,  # runs/<algo>/<env>/seed<seed> unless given
    "checkpoint_every": 0,  # environment steps per seed between checkpoints; 0: only at the end
    "resume": False,
    "eval_episodes": 1000,
    "env_seed": 0,
    "mask_illegal": False,
    "chunks": 50,
    "stop_after": 0,
    "progress": True,
}


class Trainer(NamedTuple):
    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    act: Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
    num_updates: int
    steps_per_update: int

    def train(self, rng: jax.Array) -> tuple[Any, dict]:
        """The whole run as one program: `init` then `num_updates` scanned updates."""
        runner = self.init(rng)
        return jax.lax.scan(lambda r, _: self.update(r), runner, None, self.num_updates)


class UsageError(Exception):
    """A bad argument or an unusable checkpoint: message on stderr, exit code 2."""


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pos": (lambda v: v > 0, "must be positive"),
    "nonneg": (lambda v: v >= 0, "must be >= 0"),
    "unit": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "prob": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "any": (lambda v: True, ""),
}


def build_parser(algo: str, hyper: dict, env_defaults: dict) -> argparse.ArgumentParser:
    d = {**COMMON_DEFAULTS, **env_defaults}
    p = argparse.ArgumentParser(
        prog=f"python -m baselines.{algo}",
        usage=f"python -m baselines.{algo} [options]   (--help lists them)",
        description=f"Train {algo} on an idsjax single-agent environment (all seeds in one compiled program).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("common options")
    g.add_argument("--env", default=d["env"], help="single-agent environment id (idsjax.registered_envs())")
    g.add_argument("--total-timesteps", type=int, default=d["total_timesteps"], help="environment steps per seed")
    g.add_argument("--num-envs", type=int, default=d["num_envs"], help="parallel environments per seed")
    g.add_argument("--num-seeds", type=int, default=d["num_seeds"], help="seeds trained together with vmap")
    g.add_argument("--seed", type=int, default=d["seed"], help="master seed (training randomness)")
    g.add_argument("--env-seed", type=int, default=d["env_seed"], help="seed of the environment instance (idsjax.make)")
    g.add_argument("--output-dir", default=d["output_dir"], help="default: runs/<algo>/<env>/seed<seed>")
    g.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"],
                   help="environment steps per seed between checkpoints (0: only the final one)")
    g.add_argument("--resume", action="store_true", help="continue the run saved in --output-dir with its saved configuration")
    g.add_argument("--stop-after", type=int, default=d["stop_after"],
                   help="stop with a checkpoint after this many environment steps per seed (0: never); --resume continues")
    g.add_argument("--eval-episodes", type=int, default=d["eval_episodes"], help="evaluation episodes per seed")
    g.add_argument("--mask-illegal", action=argparse.BooleanOptionalAction, default=d["mask_illegal"],
                   help="restrict the learner to legal actions (the reference's agents are not restricted)")
    g.add_argument("--chunks", type=int, default=d["chunks"], help="host round trips (progress, metrics, checkpoints) per run")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=d["progress"], help="show a progress bar")
    h = p.add_argument_group(f"{algo} hyperparameters")
    for name, (default, _, text) in hyper.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            h.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
        else:
            h.add_argument(flag, type=type(default), default=default, help=text)
    return p


POSITIVE_COMMON = ("total_timesteps", "num_envs", "num_seeds", "eval_episodes", "chunks")
NONNEG_COMMON = ("checkpoint_every", "stop_after", "seed", "env_seed")


def parse_config(module, argv) -> dict:
    parser = build_parser(module.ALGO, module.HYPERPARAMETERS, getattr(module, "ENV_DEFAULTS", {}))
    args = parser.parse_args(argv)
    config = vars(args)
    try:
        for key in POSITIVE_COMMON:
            if config[key] <= 0:
                raise UsageError(f"--{key.replace('_', '-')} must be positive, got {config[key]}")
        for key in NONNEG_COMMON:
            if config[key] < 0:
                raise UsageError(f"--{key.replace('_', '-')} must be >= 0, got {config[key]}")
        for name, (_, check, _) in module.HYPERPARAMETERS.items():
            ok, text = CHECKS[check]
            if not ok(config[name]):
                raise UsageError(f"--{name.replace('_', '-')} {text}, got {config[name]}")
        if hasattr(module, "validate"):
            module.validate(config)
        check_env_id(config["env"])
    except UsageError as e:
        parser.error(str(e))
    config["algo"] = module.ALGO
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("runs", module.ALGO, config["env"], f"seed{config['seed']}")
    return config


def check_env_id(env_id: str) -> None:
    if env_id not in idsjax.registered_envs():
        try:
            idsjax.make(env_id)
        except ValueError as e:
            raise UsageError(str(e)) from None
    env, _ = idsjax.make(env_id)
    if env.learner == "both":
        raise UsageError(
            f"{env_id!r} is a two-agent id (both players learn); train it with self-play: "
            f"python -m baselines.selfplay --env {env_id}. The single-agent baselines take "
            f"idsgame-<random_defense|minimal_defense|random_attack|maximal_attack>-vN."
        )


# --- networks -------------------------------------------------------------------------------------

OBS_SCALE = 10.0  # observation values are 0…10 (max value 9, or 10 for "unknown" with reconnaissance)


def preprocess(obs: jax.Array) -> jax.Array:
    """int8 observations of any shape [..., *obs_shape] -> float32 [..., features] (batch dims kept 1)."""
    return obs.reshape(obs.shape[0], -1).astype(jnp.float32) / OBS_SCALE


def mask_logits(logits: jax.Array, mask: jax.Array | None) -> jax.Array:
    return logits if mask is None else jnp.where(mask, logits, -1e9)


def scaled_init(scale: float):
    """Scaled LeCun-normal weights: the variance PureJaxRL's `orthogonal(scale)` gives for a square
    layer. Not orthogonal on purpose: on the CPU (jaxlib 0.10.2) a program holding several batched
    QR decompositions, as `vmap` over seeds of orthogonal initialisers makes, can hang for good
    (seen at 64 seeds)."""
    return nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")


class MLP(nn.Module):
    out: int
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        for _ in range(self.layers):
            x = act(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(x))
        return nn.Dense(self.out, kernel_init=scaled_init(self.out_scale))(x)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs on the flattened observation: (logits, value)."""

    num_actions: int
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        logits = MLP(self.num_actions, self.hidden, self.layers, self.activation, 0.01)(x)
        value = MLP(1, self.hidden, self.layers, self.activation, 1.0)(x)
        return logits, value.squeeze(-1)


# --- environments and episode bookkeeping ---------------------------------------------------------


class EpisodeTracker(NamedTuple):
    """Running returns of the episodes in progress, one per environment."""

    learner: jax.Array
    attacker: jax.Array
    defender: jax.Array

    @staticmethod
    def zeros(n: int) -> "EpisodeTracker":
        z = jnp.zeros((n,), jnp.float32)
        return EpisodeTracker(z, z, z)


class EnvCarry(NamedTuple):
    state: Any
    obs: jax.Array
    tracker: EpisodeTracker


class Step(NamedTuple):
    """One vectorised environment step, as the learners need it, plus the finished-episode stats."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array  # terminated or truncated: both end the game (the truncation pays -100, Q4)
    next_obs: jax.Array  # the observation after the step (the final one when done)
    mask: jax.Array | None
    finished: jax.Array
    hacked: jax.Array
    ep_return: jax.Array  # learner's return of the episode finished here (0 elsewhere)
    ep_attacker: jax.Array
    ep_defender: jax.Array


def reset_envs(env, env_params, key: jax.Array, n: int) -> EnvCarry:
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), env_params)
    return EnvCarry(state, obs, EpisodeTracker.zeros(n))


def legal_mask(env, env_params, carry: EnvCarry, enabled: bool):
    if not enabled:
        return None
    return jax.vmap(env.legal_action_mask, in_axes=(0, None))(carry.state, env_params)


def step_envs(env, env_params, carry: EnvCarry, action: jax.Array, key: jax.Array, mask=None):
    """Step every environment (auto-reset) and update the running episode returns."""
    n = action.shape[0]
    obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(key, n), carry.state, action, env_params
    )
    done = term | trunc
    t = carry.tracker
    ret = EpisodeTracker(t.learner + reward, t.attacker + info["attacker_reward"], t.defender + info["defender_reward"])
    step = Step(
        obs=carry.obs, action=action, reward=reward, done=done,
        next_obs=info["final_observation"], mask=mask,
        finished=done, hacked=info["hacked"] & done,
        ep_return=jnp.where(done, ret.learner, 0.0),
        ep_attacker=jnp.where(done, ret.attacker, 0.0),
        ep_defender=jnp.where(done, ret.defender, 0.0),
    )
    ret = jax.tree.map(lambda x: jnp.where(done, 0.0, x), ret)
    return EnvCarry(state, obs, EpisodeTracker(*ret)), step


def episode_metrics(steps: Step) -> dict:
    """Training statistics of the episodes that finished in a batch of steps (any leading shape)."""
    finished = steps.finished.sum()
    denom = jnp.maximum(finished, 1)
    nan = jnp.float32(jnp.nan)
    some = finished > 0
    return {
        "episodes": finished.astype(jnp.int32),
        "hack_probability": jnp.where(some, steps.hacked.sum() / denom, nan),
        "return": jnp.where(some, steps.ep_return.sum() / denom, nan),
        "attacker_return": jnp.where(some, steps.ep_attacker.sum() / denom, nan),
        "defender_return": jnp.where(some, steps.ep_defender.sum() / denom, nan),
    }


# --- evaluation -----------------------------------------------------------------------------------


def evaluate(env, env_params, act, runner, key: jax.Array, num_episodes: int, masked: bool) -> dict:
    """Play `num_episodes` games in parallel, one episode each, with the trained policy.

    An episode lasts at most `max_steps_in_episode + 2` calls (the step-limit call included), so a
    scan of that length finishes every game; steps after a game's end are ignored.
    """
    k_reset, k_run = jax.random.split(key)
    carry = reset_envs(env, env_params, k_reset, num_episodes)
    length = int(env.default_params.max_steps_in_episode) + 2

    def body(c, k):
        carry, alive, out = c
        k_act, k_env = jax.random.split(k)
        mask = legal_mask(env, env_params, carry, masked)
        action = act(runner, carry.obs, mask, k_act)
        carry, s = step_envs(env, env_params, carry, action, k_env, mask)
        ended = alive & s.done
        out = jax.tree.map(
            lambda acc, x: acc + jnp.where(ended, x, 0).astype(acc.dtype),
            out,
            {"finished": s.finished, "hacked": s.hacked, "ret": s.ep_return, "att": s.ep_attacker, "def": s.ep_defender},
        )
        return (carry, alive & ~s.done, out), None

    zeros = {
        "finished": jnp.zeros((num_episodes,), jnp.int32),
        "hacked": jnp.zeros((num_episodes,), jnp.int32),
        "ret": jnp.zeros((num_episodes,)),
        "att": jnp.zeros((num_episodes,)),
        "def": jnp.zeros((num_episodes,)),
    }
    (_, _, out), _ = jax.lax.scan(body, (carry, jnp.ones((num_episodes,), bool), zeros), jax.random.split(k_run, length))
    finished = out["finished"].sum()
    denom = jnp.maximum(finished, 1)
    return {
        "episodes": finished,
        "hack_probability": out["hacked"].sum() / denom,
        "return": out["ret"].sum() / denom,
        "attacker_return": out["att"].sum() / denom,
        "defender_return": out["def"].sum() / denom,
    }


# --- helpers shared by the trainers ---------------------------------------------------------------


def plan_updates(config: dict, steps_per_update: int) -> tuple[int, int]:
    """(updates, updates per chunk): about `total_timesteps` steps per seed, rounded up to whole chunks."""
    updates = max(1, math.ceil(config["total_timesteps"] / steps_per_update))
    chunk = math.ceil(updates / config["chunks"])
    return math.ceil(updates / chunk) * chunk, chunk


# --- host loop: progress, metrics, checkpoints ----------------------------------------------------

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CKPT_DIR = "checkpoints"


def _jsonable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("resume", "progress")}


def _manager(output_dir: str, create: bool):
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.path.join(output_dir, CKPT_DIR))
    return ocp.CheckpointManager(
        path,
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=create),
        item_names=("state", "config"),
    )


def save_checkpoint(output_dir: str, update: int, runner, wall: float, config: dict) -> None:
    import orbax.checkpoint as ocp

    mngr = _manager(output_dir, create=True)
    if update in mngr.all_steps():  # already saved at this point (e.g. --stop-after on a checkpoint step)
        mngr.close()
        return
    state = {"runner": runner, "update": np.int64(update), "wall_time": np.float64(wall)}
    mngr.save(
        update,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(_jsonable(config))),
        force=True,
    )
    mngr.wait_until_finished()
    mngr.close()


def load_config(output_dir: str) -> dict:
    path = os.path.join(output_dir, CONFIG_FILE)
    ckpt = os.path.join(output_dir, CKPT_DIR)
    if not os.path.isdir(ckpt) or not os.path.isfile(path):
        raise UsageError(f"--resume: no checkpoint in {output_dir!r} (expected {ckpt}/ and {path})")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"--resume: the configuration {path} is unreadable ({e})") from None


def restore_checkpoint(output_dir: str, abstract_runner):
    import orbax.checkpoint as ocp

    try:
        mngr = _manager(output_dir, create=False)
        step = mngr.latest_step()
    except Exception as e:  # noqa: BLE001 — any orbax failure here means the directory is unusable
        raise UsageError(f"--resume: cannot read the checkpoints in {output_dir!r}: {e}") from None
    if step is None:
        raise UsageError(f"--resume: no checkpoint in {os.path.join(output_dir, CKPT_DIR)!r}")
    abstract = {
        "runner": abstract_runner,
        "update": jax.ShapeDtypeStruct((), np.int64),
        "wall_time": jax.ShapeDtypeStruct((), np.float64),
    }
    try:
        restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        state = restored["state"]
        jax.tree.map(lambda a, b: chex.assert_equal_shape([a, b]), state["runner"], abstract_runner)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"--resume: the checkpoint at step {step} in {output_dir!r} is corrupt or belongs to another "
            f"configuration ({type(e).__name__}: {first})"
        ) from None
    finally:
        mngr.close()
    return state["runner"], int(state["update"]), float(state["wall_time"])


def load_policy(module, output_dir: str, env, env_params, seed_index: int = 0) -> Callable:
    """The trained policy of a run as `(key, obs, state) -> action id` for one game, e.g. for
    `idsjax.play --opponent checkpoint:PATH` or `idsjax.render`'s GIFs.

    `output_dir` is the run's `--output-dir`; its latest checkpoint and saved configuration are used,
    and `seed_index` picks one of its `--num-seeds` seeds. The id must be the one trained on (any
    instance of it: the policy reads observations only).
    """
    def not_a_run(err: UsageError) -> UsageError:
        reason = str(err).removeprefix("--resume: ")
        return UsageError(f"cannot load a policy of python -m baselines.{module.ALGO} from {output_dir!r}: {reason}")

    try:
        config = load_config(output_dir)
    except UsageError as err:
        raise not_a_run(err) from None
    if env.name != config["env"]:
        raise UsageError(f"the checkpoint in {output_dir!r} was trained on {config['env']!r}, not {env.name!r}")
    if not 0 <= seed_index < config["num_seeds"]:
        raise UsageError(f"seed_index {seed_index} is outside the run's {config['num_seeds']} seeds")
    trainer = module.make_train(config, env, env_params)
    seeds = jax.random.split(jax.random.PRNGKey(0), config["num_seeds"])
    abstract = jax.eval_shape(jax.vmap(trainer.init), seeds)
    try:
        runner, _, _ = restore_checkpoint(output_dir, abstract)
    except UsageError as err:
        raise not_a_run(err) from None
    runner = jax.tree.map(lambda x: x[seed_index], runner)
    masked = config["mask_illegal"]

    def act(key, obs, state):
        mask = env.legal_action_mask(state, env_params)[None] if masked else None
        return trainer.act(runner, jnp.asarray(obs)[None], mask, key)[0].astype(jnp.int32)

    act.__name__ = f"{module.ALGO}:{os.path.basename(os.path.normpath(output_dir))}"
    return act


def start_fresh_run(output_dir: str, config: dict) -> None:
    """Save the resolved configuration; a fresh run replaces the metrics and checkpoints that an
    earlier run left in the same directory."""
    with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
        json.dump(_jsonable(config), f, indent=2, sort_keys=True)
    metrics_path = os.path.join(output_dir, METRICS_FILE)
    if os.path.isfile(metrics_path):
        os.remove(metrics_path)
    shutil.rmtree(os.path.join(output_dir, CKPT_DIR), ignore_errors=True)


def _write_metrics(path: str, rows: list[dict], append: bool) -> None:
    if not rows:
        return
    exists = append and os.path.isfile(path)
    with open(path, "a" if exists else "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        if not exists:
            w.writeheader()
        w.writerows(rows)


def _truncate_metrics(path: str, last_update: int) -> None:
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["update"]) <= last_update]
    _write_metrics(path, rows, append=False) if rows else os.remove(path)


def _rows(metrics: dict, first_update: int, steps_per_update: int, wall: float, num_seeds: int) -> list[dict]:
    host = {k: np.asarray(v) for k, v in metrics.items()}  # [seeds, K]
    k = next(iter(host.values())).shape[1]
    rows = []
    for i in range(k):
        u = first_update + i + 1
        for s in range(num_seeds):
            row = {"update": u, "seed": s, "env_steps": u * steps_per_update, "wall_time": round(wall, 3)}
            row.update({name: float(v[s, i]) for name, v in host.items()})
            rows.append(row)
    return rows


def plot_metrics(path_csv: str, path_png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(path_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    keys = [k for k in rows[0] if k not in ("update", "seed", "env_steps", "wall_time", "episodes")]
    panels = ["hack_probability", "return"] + [k for k in keys if k not in ("hack_probability", "return", "attacker_return", "defender_return")]
    cols = 3
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3 * nrows), squeeze=False)
    seeds = sorted({int(r["seed"]) for r in rows})
    for ax, key in zip(axes.flat, panels):
        allv = []
        for s in seeds:
            xs = [int(r["env_steps"]) for r in rows if int(r["seed"]) == s]
            ys = [float(r[key]) for r in rows if int(r["seed"]) == s]
            allv.append(ys)
            ax.plot(xs, ys, lw=0.6, alpha=0.35 if len(seeds) > 1 else 1.0)
        if len(seeds) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (e.g. before learning starts)
                mean = np.nanmean(np.array(allv), axis=0)
            ax.plot(xs, mean, color="k", lw=1.5, label="mean")
        ax.set_title(key)
        ax.set_xlabel("environment steps per seed")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path_png, dpi=90)
    plt.close(fig)


def _fmt(x: float) -> float:
    return float(round(float(x), 4))


def run(module, argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    config = parse_config(module, argv)
    try:
        return _run(module, config)
    except UsageError as e:
        print(f"python -m baselines.{module.ALGO}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


HOST_ONLY = ("output_dir", "resume", "progress", "stop_after", "checkpoint_every")
_PROGRAMS: dict[str, tuple] = {}


def _programs(module, config: dict):
    """The environment, trainer and jitted programs of a configuration, built once per process, so
    that in-process runs of one configuration (a resumed run, tests, sweeps) compile once."""
    key = json.dumps({k: v for k, v in config.items() if k not in HOST_ONLY}, sort_keys=True)
    if key not in _PROGRAMS:
        env, env_params = idsjax.make(config["env"], seed=config["env_seed"])
        trainer = module.make_train(config, env, env_params)
        _, k_chunk = plan_updates(config, trainer.steps_per_update)

        def chunk(r):
            return jax.lax.scan(lambda c, _: trainer.update(c), r, None, k_chunk)

        def eval_one(r, key):
            return evaluate(env, env_params, trainer.act, r, key, config["eval_episodes"], config["mask_illegal"])

        compiled = {
            "init": jax.jit(jax.vmap(trainer.init)),
            "chunk": jax.jit(jax.vmap(chunk)),
            "evaluate": jax.jit(jax.vmap(eval_one)),
        }
        _PROGRAMS.clear()  # keep one: compiled programs hold memory
        _PROGRAMS[key] = (env, env_params, trainer, compiled)
    return _PROGRAMS[key]


def resumed_config(config: dict, algo: str) -> dict:
    """`config`, or with `--resume` the run's saved configuration: it wins, so the result equals an
    uninterrupted run's; only the progress bar, `--stop-after` and the output folder may change."""
    if not config["resume"]:
        return config
    out = config["output_dir"]
    saved = load_config(out)
    if saved.get("algo") != algo:
        raise UsageError(f"--resume: {out!r} holds a {saved.get('algo')!r} run, not {algo!r}")
    return {**saved, "resume": True, "progress": config["progress"], "stop_after": config["stop_after"],
            "output_dir": out}


def train_chunks(config: dict, trainer, rngs, init_fn, chunk_fn, desc: str, plot_title: str):
    """The host loop every trainer shares: start fresh or resume from `config["output_dir"]`, run
    `chunk_fn` (`k_chunk` updates of every seed) until done or `--stop-after`, appending metrics.csv,
    showing a progress bar, checkpointing every `--checkpoint-every` steps and at the end, and plotting
    the learning curves. Returns `(runner, done_updates, train_seconds, stopped)`."""
    from tqdm import tqdm

    out, progress, stop_after = config["output_dir"], config["progress"], config["stop_after"]
    num_seeds = config["num_seeds"]
    _, k_chunk = plan_updates(config, trainer.steps_per_update)
    os.makedirs(out, exist_ok=True)
    metrics_path = os.path.join(out, METRICS_FILE)

    t0 = time.perf_counter()
    if config["resume"]:
        abstract = jax.eval_shape(jax.vmap(trainer.init), rngs)
        runner, done_updates, wall_before = restore_checkpoint(out, abstract)
        _truncate_metrics(metrics_path, done_updates)
    else:
        start_fresh_run(out, config)
        runner = init_fn(rngs)
        done_updates, wall_before = 0, 0.0

    spu = trainer.steps_per_update
    ckpt_every = config["checkpoint_every"]
    next_ckpt = (done_updates * spu // ckpt_every + 1) * ckpt_every if ckpt_every else None
    bar = tqdm(
        total=trainer.num_updates * spu * num_seeds, initial=done_updates * spu * num_seeds, unit="step",
        unit_scale=True, disable=not progress, file=sys.stderr, dynamic_ncols=True, desc=desc,
    )
    stopped = False
    while done_updates < trainer.num_updates:
        runner, metrics = chunk_fn(runner)
        jax.block_until_ready(metrics)
        wall = wall_before + time.perf_counter() - t0
        _write_metrics(metrics_path, _rows(metrics, done_updates, spu, wall, num_seeds), append=True)
        done_updates += k_chunk
        hp = np.asarray(metrics["hack_probability"])[:, -1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no episode finished yet: NaN
            bar.set_postfix(hack_p=f"{np.nanmean(hp):.3f}", refresh=False)
        bar.update(k_chunk * spu * num_seeds)
        steps = done_updates * spu
        if next_ckpt is not None and steps >= next_ckpt and done_updates < trainer.num_updates:
            save_checkpoint(out, done_updates, runner, wall, config)
            next_ckpt = (steps // ckpt_every + 1) * ckpt_every
        if stop_after and steps >= stop_after and done_updates < trainer.num_updates:
            stopped = True
            break
    bar.close()
    jax.block_until_ready(runner)
    train_seconds = wall_before + time.perf_counter() - t0
    save_checkpoint(out, done_updates, runner, train_seconds, config)
    plot_metrics(metrics_path, os.path.join(out, "learning_curves.png"), plot_title)
    return runner, done_updates, train_seconds, stopped


def _run(module, config: dict) -> dict:
    config = resumed_config(config, module.ALGO)
    out = config["output_dir"]
    env, env_params, trainer, compiled = _programs(module, config)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    runner, done_updates, train_seconds, stopped = train_chunks(
        config, trainer, rngs, compiled["init"], compiled["chunk"],
        desc=f"{module.ALGO} {config['env']}", plot_title=f"{module.ALGO} on {config['env']}",
    )
    spu = trainer.steps_per_update
    env_steps = done_updates * spu
    result = {
        "algo": module.ALGO,
        "env": config["env"],
        "seed": config["seed"],
        "num_seeds": num_seeds,
        "env_steps": env_steps,
        "train_seconds": _fmt(train_seconds),
        "steps_per_second": _fmt(env_steps * num_seeds / max(train_seconds, 1e-9)),
    }
    if stopped:
        result["stopped"] = True
        print(f"stopped after {env_steps} steps per seed; continue with --resume --output-dir {out}")
        print(json.dumps(result))
        return result

    eval_keys = jax.random.split(jax.random.PRNGKey(config["seed"] + 1_000_003), num_seeds)
    ev = jax.device_get(compiled["evaluate"](runner, eval_keys))
    per_seed = [{k: _fmt(v[s]) for k, v in ev.items()} for s in range(num_seeds)]
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump({"per_seed": per_seed, "policy": getattr(module, "EVAL_POLICY", "")}, f, indent=2)
    result.update({
        "eval_episodes": int(np.sum(ev["episodes"])),
        "eval_hack_probability": _fmt(np.mean(ev["hack_probability"])),
        "eval_attacker_return": _fmt(np.mean(ev["attacker_return"])),
        "eval_defender_return": _fmt(np.mean(ev["defender_return"])),
        "eval_hack_probability_per_seed": [s["hack_probability"] for s in per_seed],
        "eval_hack_probability_std": _fmt(np.std(ev["hack_probability"])),
        "output_dir": out,
    })
    print(json.dumps(result))
    sys.stdout.flush()
    return result
