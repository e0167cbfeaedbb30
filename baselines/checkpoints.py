"""Checkpoints: save a run's whole training state, restore it (falling back to the previous intact
one), and load any run's trained policy for one side, for `idsjax.play`, `idsjax.render` and exact
exploitability.

A run directory (`--output-dir`) holds `config.json` (the resolved configuration) and
`checkpoints/<update>/` (orbax; the last two are kept). `load_checkpoint_policy` is the research
kit's `checkpoint` loader of the library's entry-point group `idsjax.policy_loaders`, so
`--opponent checkpoint:RUN_DIR` works for every trainer (ppo, dqn, tabular_q, reinforce,
actor_critic) and for either side of a self-play run.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from baselines.errors import UsageError
from baselines.trainers import TRAINER_MODULES

CONFIG_FILE = "config.json"
CKPT_DIR = "checkpoints"
SIDES = ("attacker", "defender")
ALGORITHMS = TRAINER_MODULES  # algorithm name (config["algo"]) -> the module with its `make_train`
FIX = "train the run again, or point to another run directory"


def jsonable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("resume", "progress", "overwrite", "tensorboard", "cli_flags")}


def _manager(output_dir: str, create: bool):
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.path.join(output_dir, CKPT_DIR))
    # Under jax.distributed, orbax synchronises every process at each step; a run's checkpoints are
    # written by process 0 alone, from host arrays (baselines.host_loop.save), so it acts alone (and
    # orbax then leaves creating the folder to us).
    alone = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes={jax.process_index()})
    if create:
        os.makedirs(path, exist_ok=True)
    return ocp.CheckpointManager(
        path,
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=False, multiprocessing_options=alone),
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
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(jsonable(config))),
        force=True,
    )
    mngr.wait_until_finished()
    mngr.close()


def saved_updates(output_dir: str) -> list[int]:
    """The updates at which the run in `output_dir` holds a finished checkpoint, oldest first, read from
    the folder names (orbax writes a checkpoint under a temporary name and renames it to its step when
    it is complete), without starting orbax."""
    try:
        names = os.listdir(os.path.join(output_dir, CKPT_DIR))
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(output_dir, CKPT_DIR, n)))


def load_config(output_dir: str) -> dict:
    """The saved configuration of a run; UsageError (one sentence) when there is no run."""
    path = os.path.join(output_dir, CONFIG_FILE)
    ckpt = os.path.join(output_dir, CKPT_DIR)
    if not os.path.isdir(ckpt) or not os.path.isfile(path):
        raise UsageError(f"no checkpoint in {output_dir!r} (expected {ckpt}/ and {path})")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        raise UsageError(f"the configuration {path} is unreadable or not JSON; {FIX}") from None
    if not isinstance(config, dict) or "algo" not in config or "env" not in config:
        raise UsageError(f"the configuration {path} is not a baselines run configuration; {FIX}")
    return config


def restore_checkpoint(output_dir: str, abstract_runner) -> tuple[Any, int, float]:
    """`(runner, update, wall_time)` of the newest intact checkpoint. A newest one that cannot be read
    is skipped with a one-line warning on stderr; when none can be read, UsageError names the bad one."""
    import orbax.checkpoint as ocp

    ckpt = os.path.join(output_dir, CKPT_DIR)
    try:
        mngr = _manager(output_dir, create=False)
        steps = sorted(mngr.all_steps(), reverse=True)
    except Exception:  # noqa: BLE001 — any orbax failure here means the directory is unusable
        raise UsageError(f"cannot read the checkpoints in {ckpt!r}; {FIX}") from None
    if not steps:
        mngr.close()
        raise UsageError(f"no checkpoint in {ckpt!r}")
    # A leaf with no placement is read onto the default device: a run saved from several devices
    # (`--devices N`) then loads on one, whatever topology orbax recorded.
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract_runner = jax.tree.map(
        lambda x: (
            x if getattr(x, "sharding", None) is not None else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device)
        ),
        abstract_runner,
    )
    abstract = {
        "runner": abstract_runner,
        "update": jax.ShapeDtypeStruct((), np.int64),
        "wall_time": jax.ShapeDtypeStruct((), np.float64),
    }
    bad = []
    try:
        for step in steps:
            try:
                with _quiet_orbax():
                    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
                state = restored["state"]
                same = jax.tree.map(lambda a, b: np.shape(a) == tuple(b.shape), state["runner"], abstract_runner)
                if not all(jax.tree.leaves(same)):
                    raise ValueError("shapes differ")
            except Exception:  # noqa: BLE001 — corrupt, truncated, another configuration's, or older
                try:
                    with _quiet_orbax():
                        raw = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
                    state = {**raw, "runner": _upgraded(raw["runner"], abstract_runner)}
                except Exception:  # noqa: BLE001 — not an older layout either
                    bad.append(step)
                    continue
            if bad:
                print(
                    f"warning: the checkpoint {os.path.join(ckpt, str(bad[0]))} is corrupt; using the previous "
                    f"intact one (update {step})",
                    file=sys.stderr,
                )
            return state["runner"], int(state["update"]), float(state["wall_time"])
    finally:
        mngr.close()
    raise UsageError(
        f"the checkpoint {os.path.join(ckpt, str(bad[0]))} is corrupt or belongs to another configuration, and no "
        f"earlier intact checkpoint exists; {FIX}"
    )


def _upgraded(raw, abstract_runner):
    """A runner saved before `EnvState.defense_detection`, as the current `abstract_runner`: read as
    orbax wrote it (nested dicts and lists by field name), each game state's `defense` and `detection`
    joined into `defense_detection`, then placed leaf by leaf. Raises when anything else differs."""

    def join(node):
        if isinstance(node, dict):
            node = {k: join(v) for k, v in node.items()}
            if {"defense", "detection", "attack", "position"} <= node.keys() and "defense_detection" not in node:
                defense, detection = np.asarray(node.pop("defense")), np.asarray(node.pop("detection"))
                node["defense_detection"] = np.concatenate([defense, detection[..., None].astype(defense.dtype)], -1)
            return node
        if isinstance(node, (list, tuple)):
            return [join(v) for v in node]
        return node

    def at(node, path):
        for key in path:
            name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", None)))
            node = node[name]
        return node

    raw = join(raw)
    paths, treedef = jax.tree_util.tree_flatten_with_path(abstract_runner)
    leaves = []
    for path, target in paths:
        value = np.asarray(at(raw, path))
        if value.shape != tuple(target.shape):
            raise ValueError(f"{jax.tree_util.keystr(path)}: shape {value.shape}, expected {tuple(target.shape)}")
        leaves.append(jax.device_put(value.astype(target.dtype), target.sharding))
    return jax.tree_util.tree_unflatten(treedef, leaves)


class _quiet_orbax:
    """Silence absl's logging while a restore may fail: its errors are reported as one sentence."""

    def __enter__(self):
        import logging

        self._logger = logging.getLogger("absl")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return False


# --- trained policies -----------------------------------------------------------------------------


def _side_mask(env, params, state, side: str):
    return env.attack_mask(state, params) if side == "attacker" else env.defense_mask(state, params)


def _side_layout(env, side: str) -> tuple[tuple[int, ...], int]:
    """(observation shape, number of ids) of `side` in `env`: a registered id's or a scenario's."""
    return env.observation_shape(side), env.num_ids(side)


def _plays(config: dict, trained_env, env, side: str) -> bool:
    """Whether a policy trained on `trained_env` reads `env`'s observations of `side` and names its ids:
    the same shapes, or for the node-wise network (`--network nodes`) any number of nodes with the same
    row width and ids per node."""
    (obs_t, ids_t), (obs, ids) = _side_layout(trained_env, side), _side_layout(env, side)
    if config.get("network") == "nodes":
        return obs_t[1:] == obs[1:] and ids_t * obs[0] == ids * obs_t[0]
    return (obs_t, ids_t) == (obs, ids)


def _feature_env(config: dict, env, refuse: Callable[[str], UsageError]):
    """The environment through which a run reads `env`'s observations: `env` itself, or for a run
    trained with `--node-features` (`config["node_features"]`) `env` wrapped in `NodeFeatures` where
    the caller's is not already. A run trained without them is refused an environment that has them
    (its policy would read columns it never saw)."""
    from idsjax.node_features import NodeFeatures

    has = isinstance(env, NodeFeatures)
    if not config.get("node_features"):
        if has:
            raise refuse("it was trained without --node-features; give the environment without NodeFeatures")
        return env
    if has:
        return env
    try:
        return NodeFeatures(env)
    except ValueError as err:
        raise refuse(f"it was trained with --node-features, and {str(err).rstrip('.')}") from None


def load_run(output_dir: str, env, side: str | None = None, algo: str | None = None, seed_index: int = 0):
    """Check a run against the id and side it is to play, restore it, and return
    `(config, side, act, probs)` for one seed, where `act(key, obs[B], mask[B] | None) -> ids[B]` and
    `probs(obs[B], mask[B] | None) -> float32[B, A]` are that side's evaluation policy."""

    def refuse(reason: str) -> UsageError:
        return UsageError(f"cannot load a policy from {output_dir!r}: {reason}")

    try:
        config = load_config(output_dir)
    except UsageError as err:
        raise refuse(str(err)) from None
    run_algo = config["algo"]
    if run_algo not in ALGORITHMS:
        raise refuse(f"it holds a run of {run_algo!r}, which no trainer of baselines makes")
    if algo is not None and algo != run_algo:
        raise refuse(f"it holds a {run_algo} run, not a {algo} run")
    from baselines import scenarios

    try:
        trained_env, trained_params = scenarios.make_env({"env_seed": 0, **config})
    except (ValueError, UsageError):
        raise refuse(f"it was trained on {config['env']!r}, which this version of idsjax does not know") from None
    sides = SIDES if trained_env.learner == "both" else (trained_env.learner,)
    if side is None:
        if len(sides) > 1:
            raise refuse("it is a self-play run with a policy for each side; name the side (attacker or defender)")
        side = sides[0]
    if side not in SIDES:
        raise refuse(f"side must be 'attacker' or 'defender', got {side!r}")
    if side not in sides:
        raise refuse(f"it holds a {sides[0]} policy (trained on {config['env']}), which cannot play the {side}")
    env = _feature_env(config, env, refuse)  # before the layout checks: the widths then compare equal
    if config.get("network") == "nodes" or env.version is None or trained_env.version is None:
        if not _plays(config, trained_env, env, side):
            (obs_t, ids_t), (obs, ids) = _side_layout(trained_env, side), _side_layout(env, side)
            raise refuse(
                f"it was trained on {config['env']!r} (the {side}'s observations {obs_t}, {ids_t} ids), which "
                f"{getattr(env, 'name', 'this game')} does not match (observations {obs}, {ids} ids)"
                + ("" if config.get("network") == "nodes" else "; only --network nodes runs play other sizes")
            )
    elif env.version != trained_env.version or env.num_ids(side) != trained_env.num_ids(side):
        raise refuse(
            f"it was trained on {config['env']!r} (version {trained_env.version}), not on a version "
            f"{env.version} id like {env.name!r}"
        )
    num_seeds = int(config.get("num_seeds", 1))
    if not 0 <= seed_index < num_seeds:
        raise refuse(f"seed_index {seed_index} is outside the run's {num_seeds} seeds")

    module = importlib.import_module(ALGORITHMS[run_algo])
    # A run saved before a hyperparameter existed was trained with what is now its default.
    from baselines.cli import COMMON_DEFAULTS

    defaults = {
        **COMMON_DEFAULTS,
        **getattr(module, "ENV_DEFAULTS", {}),
        **{name: spec[0] for name, spec in module.HYPERPARAMETERS.items()},
    }
    config = {**defaults, **config}
    try:
        trainer = module.make_train(config, trained_env, trained_params)
        seeds = jax.random.split(jax.random.PRNGKey(0), num_seeds)
        abstract = jax.eval_shape(jax.vmap(trainer.init), seeds)
    except Exception as err:  # noqa: BLE001 — a configuration this version of the trainer cannot build
        raise refuse(
            f"its configuration does not build a {run_algo} trainer of this version of baselines "
            f"({type(err).__name__}: {err}); {FIX}"
        ) from None
    try:
        runner, _, _ = restore_checkpoint(output_dir, abstract)
    except UsageError as err:
        raise refuse(str(err)) from None
    runner = jax.tree.map(lambda x: x[seed_index], runner)
    if run_algo == "selfplay":
        act, probs = module.side_policy(config, trained_env, runner, side)
    elif hasattr(trainer.act, "init_carry"):  # a policy with memory (`baselines.recurrent`)
        act = BoundRecurrentAct(
            lambda n: trainer.act.init_carry(runner, n),
            lambda key, obs, mask, carry: trainer.act.step(runner, obs, mask, key, carry),
        )
        probs = None
    else:
        act = lambda key, obs, mask: trainer.act(runner, obs, mask, key)  # noqa: E731
        probs = lambda obs, mask: trainer.probs(runner, obs, mask)  # noqa: E731
    return config, side, act, probs


class BoundRecurrentAct(NamedTuple):
    """A restored run's policy with memory: `init_carry(n)`, `step(key, obs[B], mask[B] | None, carry)
    -> (ids[B], carry)` (`load_run`'s `act` for a `--network gru` run)."""

    init_carry: Callable[[int], Any]
    step: Callable[..., tuple[Any, Any]]


def load_policy(
    output_dir: str, env, env_params, side: str | None = None, algo: str | None = None, seed_index: int = 0
) -> Callable:
    """The trained policy of a run as `(key, obs, state, mask=None) -> action id` for one game of `env`
    (any id of the version it was trained on; `obs` is that side's own view; a run trained with
    `--mask-illegal` takes its legal ids from `state`, or from `mask` where the caller has no state), e.g. for `idsjax.play --opponent
    checkpoint:PATH` or `idsjax.render`'s GIFs. Jittable.

    A run trained with `--node-features` takes `env`'s own observations and adds the columns itself
    (from the state; without one, on a fixed network only).

    A run with memory (`--network gru`) loads as an `idsjax.policies.RecurrentPolicy`: `step(key, obs,
    state, carry, mask=None) -> (id, carry)` from `init_carry()`, reset by the caller where an episode
    starts.

    `side` defaults to the run's learner (a self-play run needs it); `algo`, when given, must be the
    run's; `seed_index` picks one of its `--num-seeds` seeds. A mismatch of algorithm, side or
    version, or an unreadable run, raises UsageError with one sentence.
    """
    config, side, act, _ = load_run(output_dir, env, side, algo, seed_index)
    masked = bool(config.get("mask_illegal", False))
    columns = _columns(config, env, env_params, output_dir)
    name = f"{config['algo']}:{os.path.basename(os.path.normpath(output_dir))}"

    def inputs(obs, state, mask):
        obs = columns(obs, state)
        # A remote agent (the game server's clients) holds only its view: it passes the legal ids it
        # was sent as `mask` instead of the state.
        if not masked:
            mask = None
        elif mask is not None:
            mask = jnp.asarray(mask, bool).reshape(1, -1)
        elif state is None:
            raise UsageError(
                f"the run in {output_dir!r} was trained with --mask-illegal: pass the game state or the "
                "legal-action mask (mask=, bool[number of ids]) to its policy"
            )
        else:
            mask = _side_mask(env, env_params, state, side)[None]
        return jnp.asarray(obs)[None], mask

    if isinstance(act, BoundRecurrentAct):
        from idsjax.policies import RecurrentPolicy

        def step(key, obs, state, carry, mask=None):
            obs, mask = inputs(obs, state, mask)
            ids, carry = act.step(key, obs, mask, jax.tree.map(lambda x: x[None], carry))
            return ids[0].astype(jnp.int32), jax.tree.map(lambda x: x[0], carry)

        return RecurrentPolicy(jax.tree.map(lambda x: x[0], act.init_carry(1)), step, name)

    def policy(key, obs, state, mask=None):
        obs, mask = inputs(obs, state, mask)
        return act(key, obs, mask)[0].astype(jnp.int32)

    policy.__name__ = name
    return policy


def _columns(config: dict, env, params, output_dir: str) -> Callable:
    """`(obs, state) -> obs` as the run reads it: `obs` itself, or with the node-feature columns of
    the network `state` is played on, for a run trained with `--node-features` when the caller's
    `env` gives its own observations (`load_run` has checked that the columns can be added). Without
    the state (the game server's remote agents hold only their view), a fixed network's columns come
    from `params`; a generated family's network is drawn into the state, so it is refused."""
    from idsjax.node_features import NodeFeatures

    if not config.get("node_features") or isinstance(env, NodeFeatures):
        return lambda obs, state: obs
    wrapped = NodeFeatures(env)
    fixed_network = not hasattr(getattr(env, "unwrapped", env), "draw_network")  # GeneratedEnv draws one at each reset

    def columns(obs, state):
        if state is None and not fixed_network:
            raise UsageError(
                f"the run in {output_dir!r} was trained with --node-features on {getattr(env, 'name', 'a game')}, "
                "whose network is drawn at each reset: pass the game state (its columns come from the network "
                "in the state; a view and its legal ids do not name it)"
            )
        return wrapped.observe(jnp.asarray(obs), state, params)

    return columns


def load_checkpoint_policy(path: str, env, params, side: str) -> Callable:
    """The `checkpoint` loader of the entry-point group `idsjax.policy_loaders`."""
    return load_policy(path, env, params, side=side)


def load_checkpoint_distribution(path: str, env, params, side: str, seed_index: int = 0) -> Callable:
    """`probs_fn(obs, state) -> float32[num ids of side]`: the exact distribution the run's policy
    samples from at evaluation (masked softmax for policy-gradient runs and self-play sides; one-hot
    on the greedy id for DQN; uniform over the greedy ties for tabular Q). Jittable and vmappable."""
    config, side, _, probs = load_run(path, env, side, None, seed_index)
    if probs is None:
        raise UsageError(
            f"the run in {path!r} has memory (--network gru): its action distribution depends on the game so "
            "far, not on the state alone, so exact exploitability (which reads one distribution per state) "
            "does not apply"
        )
    masked = bool(config.get("mask_illegal", False))
    columns = _columns(config, env, params, path)

    def probs_fn(obs, state):
        obs = columns(obs, state)
        mask = _side_mask(env, params, state, side)[None] if masked else None
        return probs(jnp.asarray(obs)[None], mask)[0].astype(jnp.float32)

    return probs_fn
