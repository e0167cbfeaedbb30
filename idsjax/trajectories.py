"""Record whole batched episodes of any game on the device, save them as a compact `.npz`, load them,
replay them step for step, and draw them.

    from idsjax.trajectories import record, save_trajectories, load_trajectories, replay, trajectory_gif
    traj = record("idsgame-v3", "attack_maximal", "defend_minimal", num_games=1024, seed=0)
    traj = record(idsjax.make_scenario("office_dmz.yaml", mode="minimal_defense"), num_games=64)
    traj = record(idsjax.make_generated(family, mode=""), num_games=64)   # a fresh network per game
    traj.hack_probability                      # fraction of the finished games that ended in a hack
    save_trajectories("games.npz", traj)
    traj = load_trajectories("games.npz")
    replay(traj)                               # plays the recorded actions again: equal bit for bit
    trajectory_gif(traj, game=0, path="game0.gif")

`record` plays `num_games` games of one game (a registered id, or the `(env, params)` pair of an id,
a scenario or a generated family) with a pair of policies (bot names, `"random"`, `"SCHEME:ARG"` such
as `checkpoint:RUN_DIR`, jittable callables `(key, obs, state) -> id`, or policies with memory,
`idsjax.policies.RecurrentPolicy`, whose memory starts fresh in every game; see `idsjax.policies`)
through `idsjax.rollout` in one jitted `lax.scan` over `max_steps` joint steps (default: the longest
possible episode, `idsjax.rollout.episode_horizon`), each game exactly one episode: a finished game is
frozen and its later steps are marked invalid.

`Trajectories` fields (B games, T steps, N nodes, A attack types, K the words of a key):

- states, `[B, T+1, ...]`: `position` int32, `attack`, `defense`, `recon` int8[N, A], `detection` int8[N],
  `revealed` bool[N], `time` int32, `done`, `hacked`, `detected`, `timed_out` bool; index 0 is the
  reset state, index t+1 the state after step t (finished games repeat their last state);
- steps, `[B, T]`: `attack_action`, `defense_action` int32 (-1 where invalid), `rewards` float32[2]
  (attacker, defender; 0 where invalid), `valid` bool, `attack_legal`, `moved` bool;
- outcomes, `[B]`: `length` (joint steps played), `hacked_final`, `detected_final`, `timed_out_final`,
  `returns` float32[2];
- keys: `reset_key` uint32[B, K] and `step_key` uint32[B, T, K], the keys each game was reset and
  stepped with (what `replay` needs besides the actions; zero on the invalid steps after a game's end);
- with `record(..., observations=True)`: `attacker_observation`, `defender_observation` `[B, T+1, ...]`,
  each side's view of the states above;
- metadata: `env_id` (the registered id, or the game's name), `instance_seed`, `seed`, `attacker`,
  `defender`, and what rebuilds the game (`game`, `game_arrays`; `Trajectories.make_game`).

How a recording names its game, so that `load_trajectories` and `replay` rebuild exactly that game
without the files or settings it was made from:

- a registered id: its id, and its params' arrays (`params.*`; a file without them, such as one of
  format 1, plays `idsjax.make(env_id, seed=instance_seed)`'s);
- a scenario: the environment's shape and mode, the params' arrays (`params.*`: the network and the
  construction-time layout, i.e. the scenario's content as the game reads it), and, when `record` is
  given the `Scenario`, its YAML text, which names the nodes in drawings;
- a generated family: the family's settings, the mode, the horizon, and the network each game was
  played on (`network.*`, one per game: a family draws a new one at every reset);
- a batch of scenarios (`make_scenario_batch`) is refused: record each scenario on its own.

Another recorder (the game server's) writes the same format through `Trajectories.of_game`; it should
keep the keys it reset and stepped with (`reset_key`, `step_key`) so that `replay` can check it. A
recording without keys is replayed with the keys `record` derives from its seed.

This module is longer than most because it is the one place that knows the format: what a recording
keeps, how it names its game, how it is written and read, the replay that checks it, and its drawing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.policies import ATTACKER, DEFENDER, default_policy, make_joint_policy_step, policy_name
from idsjax.rollout import JointGame, Transition, episode_horizon, joint_policy, rollout

FORMAT_VERSION = 2  # 1: registered ids only, no keys, no params (still loaded)
REGISTERED, SCENARIO, GENERATED = "registered", "scenario", "generated"
STATE_FIELDS = (
    "position",
    "attack",
    "defense",
    "recon",
    "detection",
    "revealed",
    "time",
    "done",
    "hacked",
    "detected",
    "timed_out",
)
STEP_FIELDS = ("attack_action", "defense_action", "rewards", "valid", "attack_legal", "moved")
OUTCOME_FIELDS = ("length", "hacked_final", "detected_final", "timed_out_final", "returns")
OBSERVATION_FIELDS = ("attacker_observation", "defender_observation")
KEY_FIELDS = ("reset_key", "step_key")
_SIDES = tuple(zip((ATTACKER, DEFENDER), OBSERVATION_FIELDS))
_FIELD_ORDER = {f: i for i, f in enumerate(STATE_FIELDS + STEP_FIELDS + OUTCOME_FIELDS + OBSERVATION_FIELDS)}
# Prefixes of the game's arrays in a file: one game's params, or each game's network.
PARAMS, NETWORK = "params.", "network."


class ReplayError(ValueError):
    """A replay that does not reproduce its recording; the message is one sentence."""


@dataclasses.dataclass
class Trajectories:
    """Recorded games as host NumPy arrays (see the module docstring). `game` is None for a recording
    that names a registered id only (`env_id`, as format 1 and the game server write it)."""

    env_id: str
    instance_seed: int
    seed: int
    attacker: str
    defender: str
    arrays: dict[str, np.ndarray]
    game: dict | None = None
    game_arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @classmethod
    def of_game(
        cls,
        env,
        params,
        *,
        arrays: dict[str, np.ndarray],
        seed: int,
        attacker: str,
        defender: str,
        instance_seed: int = 0,
        networks=None,
        scenario=None,
    ) -> Trajectories:
        """Recorded `arrays` of games of `(env, params)`, named so that `make_game` rebuilds the game.

        `networks`: for a generated family, the network each game (row of `arrays`) was played on,
        stacked (`GeneratedState.network` of the games' reset states). `scenario`: optionally the
        `Scenario` a scenario game was made from (its YAML is kept; it names the nodes)."""
        game, game_arrays = _describe(env, params, networks, scenario, len(arrays["length"]))
        return cls(
            env_id=env.name,
            instance_seed=int(instance_seed),
            seed=int(seed),
            attacker=attacker,
            defender=defender,
            arrays=arrays,
            game=game,
            game_arrays=game_arrays,
        )

    @property
    def kind(self) -> str:
        """ "registered", "scenario" or "generated"."""
        return (self.game or {}).get("kind", REGISTERED)

    @property
    def num_games(self) -> int:
        return int(self.arrays["length"].shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.arrays["valid"].shape[1])

    @property
    def hack_probability(self) -> float:
        """Hacks per finished game (0.0 when no game finished)."""
        finished = self.arrays["hacked_final"] | self.arrays["detected_final"] | self.arrays["timed_out_final"]
        return float(self.arrays["hacked_final"].sum() / max(int(finished.sum()), 1))

    # -- the game --------------------------------------------------------------------------------
    def make_game(self):
        """`(env, params)` of the recorded game, rebuilt from the recording alone. A generated
        family's params draw fresh networks; each recorded game's own is `network(game)`."""
        from idsjax.registry import make

        if self.kind == REGISTERED:
            env, template = make(self.env_id, seed=self.instance_seed)
            if not any(k.startswith(PARAMS) for k in self.game_arrays):
                return env, template  # format 1 and the game server: the id and its instance seed
            return env, _restore(template, self.game_arrays, PARAMS, self.env_id)
        from idsjax.scenario.arrays import ScenarioShape

        mode = self.game["mode"]
        if self.kind == SCENARIO:
            from idsjax.scenario.env import ScenarioEnv

            params = _restore(_network_template(), self.game_arrays, PARAMS, self.env_id)
            return ScenarioEnv(ScenarioShape(**self.game["shape"]), mode, default_params=params), params
        if self.kind == GENERATED:
            from idsjax.scenario.generated import GeneratedEnv
            from idsjax.scenario.generator import Family

            family = Family(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.game["family"].items()})
            env = GeneratedEnv(family, mode, name=self.game["name"])
            return env, env.default_params.replace(max_steps_in_episode=int(self.game["max_steps_in_episode"]))
        raise ValueError(f"{self.env_id}: unknown kind of game {self.kind!r} in this recording")

    def networks(self):
        """A generated family's recorded networks, stacked (`ScenarioParams` [B]); None for other games."""
        if self.kind != GENERATED:
            return None
        if "_networks" not in self.__dict__:  # read once: drawing a game asks for its network every frame
            self.__dict__["_networks"] = _restore(_network_template(), self.game_arrays, NETWORK, self.env_id)
        return self.__dict__["_networks"]

    def network(self, game: int):
        """The network game `game` was played on (a generated family; None for other games)."""
        networks = self.networks()
        return None if networks is None else jax.tree.map(lambda x: x[game], networks)

    def scenario(self):
        """The `Scenario` a scenario game was recorded with (names its nodes), or None."""
        text = (self.game or {}).get("scenario")
        if text is None:
            return None
        import yaml

        from idsjax.scenario.schema import load_scenario

        return load_scenario(yaml.safe_load(text), source=f"<{self.env_id} recording>")

    # -- states ----------------------------------------------------------------------------------
    def state(self, game: int, t: int):
        """The state of game `game` after `t` joint steps (t = 0: the reset state), for rendering
        (a generated family's carries the game's network, as `GeneratedState` does).

        Fields the recorder does not keep (failure counts, dense-reward bookkeeping) are zero."""
        from idsjax.types import EnvState

        a = self.arrays
        get = lambda f: jnp.asarray(a[f][game, t])  # noqa: E731
        attack = get("attack")
        n = attack.shape[0]
        fields = dict(
            time=get("time"),
            attack=attack,
            defense=get("defense"),
            detection=get("detection"),
            recon=get("recon"),
            revealed=get("revealed"),
            position=get("position"),
            done=get("done"),
            hacked=get("hacked"),
            detected=get("detected"),
            failed=jnp.zeros_like(attack),
            num_failed=jnp.int32(0),
            furthest_row=jnp.int32(0),
            num_hacked=jnp.int32(0),
            recon_targeted=jnp.zeros((n,), bool),
            timed_out=get("timed_out"),
        )
        if self.kind == GENERATED:
            from idsjax.scenario.generated import GeneratedState

            return GeneratedState.create(**fields, network=self.network(game))
        return EnvState.create(**fields)

    def states(self, game: int):
        """The states of one game, reset state first, up to its last step."""
        return [self.state(game, t) for t in range(int(self.arrays["length"][game]) + 1)]

    def joint_action(self, game: int, t: int) -> tuple[int, int]:
        return int(self.arrays["attack_action"][game, t]), int(self.arrays["defense_action"][game, t])


# -- naming a game ----------------------------------------------------------------------------------
def _kind(env) -> str:
    from idsjax.scenario.env import ScenarioEnv
    from idsjax.scenario.generated import GeneratedEnv

    if isinstance(env, GeneratedEnv):
        return GENERATED
    if isinstance(env, ScenarioEnv):
        return SCENARIO
    if getattr(env, "version", None) is not None:
        return REGISTERED
    raise TypeError(
        f"trajectories record idsjax games (a registered id, make_scenario or make_generated); got {type(env).__name__}"
    )


def _check_one_game(params) -> None:
    if jnp.ndim(params.max_steps_in_episode) != 0:
        raise ValueError(
            "trajectories record one game's params and these are a batch of scenarios (make_scenario_batch): "
            "record each scenario's (env, params) on its own"
        )


def _describe(env, params, networks, scenario, num_games: int) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and arrays that name `(env, params)`'s game in a recording (see the module docstring)."""
    kind = _kind(env)
    _check_one_game(params)
    if kind == REGISTERED:
        return {"kind": REGISTERED}, _flatten(params, PARAMS)
    game = {"kind": kind, "mode": env.mode.value}
    if kind == SCENARIO:
        from idsjax.scenario.schema import dump_scenario

        if scenario is not None:
            real = int(np.asarray(params.scenario.node_mask).sum())
            if len(scenario.nodes) != real:
                raise ValueError(
                    f"scenario {scenario.name!r} has {len(scenario.nodes)} nodes but the game recorded has {real}: "
                    "pass the Scenario the game was made from, or none"
                )
        game.update(shape=dict(env.shape._asdict()), scenario=None if scenario is None else dump_scenario(scenario))
        return game, _flatten(params, PARAMS)
    if networks is None or jax.tree.leaves(networks)[0].shape[0] != num_games:
        raise ValueError(
            f"a recording of a generated family keeps each game's network: pass networks for all {num_games} games"
        )
    game.update(
        family=dataclasses.asdict(env.family),
        name=env.name,
        max_steps_in_episode=int(params.max_steps_in_episode),
    )
    return game, _flatten(networks, NETWORK)


def _path_name(path) -> str:
    return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)


def _flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    """A params pytree as host arrays named by their path (`prefix` + `scenario.reach`, ...)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {prefix + _path_name(path): np.asarray(leaf) for path, leaf in leaves}


def _restore(template, arrays: dict[str, np.ndarray], prefix: str, name: str):
    """`template`'s pytree with every leaf read from `arrays` by its path; Python numbers stay Python
    numbers (a registered id's horizon is one, read while tracing)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    values = []
    for path, leaf in leaves:
        key = prefix + _path_name(path)
        if key not in arrays:
            raise ValueError(f"{name}: this recording lacks {key!r} (written by an idsjax whose games differ)")
        value = arrays[key]
        values.append(type(leaf)(value.item()) if isinstance(leaf, bool | int | float) else jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, values)


def _network_template():
    """The structure of one network's params (`ScenarioParams` over `ScenarioArrays`), leaves empty."""
    from idsjax.scenario.arrays import ScenarioArrays
    from idsjax.scenario.game import ScenarioParams

    def empty(cls, **given):
        return cls(**{f.name: np.zeros(()) for f in dataclasses.fields(cls) if f.name not in given}, **given)

    return empty(ScenarioParams, scenario=empty(ScenarioArrays))


# -- recording --------------------------------------------------------------------------------------
def _resolve(env_or_id, instance_seed: int):
    if isinstance(env_or_id, str):
        import idsjax

        return idsjax.make(env_or_id, seed=instance_seed)
    return env_or_id


def _where(valid, new, old):
    """`new` where the game is valid, else `old`, for a batch of games or one game."""
    return jnp.where(valid.reshape(valid.shape + (1,) * (jnp.ndim(new) - valid.ndim)), new, old)


def _keep(state) -> dict:
    return {f: getattr(state, f) for f in STATE_FIELDS}


def _step_record(t: Transition, observations: bool) -> dict:
    """What a recording keeps of one step (of a batch of games or of one game): a finished game
    repeats its last state (and view), and its invalid step records -1 actions and no reward."""
    valid = t.valid
    out = {
        **_keep(jax.tree.map(lambda new, old: _where(valid, new, old), t.next_state, t.state)),
        "attack_action": jnp.where(valid, t.action[ATTACKER], -1),
        "defense_action": jnp.where(valid, t.action[DEFENDER], -1),
        "rewards": _where(valid, t.reward, jnp.zeros_like(t.reward)),
        "valid": valid,
        "attack_legal": t.info["attack_legal"] & valid,
        "moved": t.info["moved"] & valid,
    }
    if observations:
        for side, field in zip((ATTACKER, DEFENDER), OBSERVATION_FIELDS):
            out[field] = _where(valid, t.next_obs[side], t.obs[side])
    return out


def _with_initial(out: dict, initial: dict, axis: int) -> dict:
    """Per-state fields with the reset state (or view) first."""
    for f, first in initial.items():
        out[f] = jnp.concatenate([jnp.expand_dims(first, axis), out[f]], axis=axis)
    return out


def rollout_keys(key: jax.Array, num_games: int, num_steps: int):
    """The keys `idsjax.rollout` resets and steps each game with (the key order its docstring gives):
    `(reset [B, K], step [B, T, K])`. `replay` checks that they are the ones `record` played."""
    k_reset, k_run = jax.random.split(key)
    reset = jax.random.split(k_reset, num_games)
    per_step = jax.vmap(lambda k: jax.random.split(jax.random.split(k)[1], num_games))(
        jax.random.split(k_run, num_steps)
    )
    return reset, jnp.swapaxes(per_step, 0, 1)


def make_recorder(
    env,
    params,
    attacker_policy=None,
    defender_policy=None,
    *,
    num_games: int,
    max_steps: int | None = None,
    observations: bool = False,
):
    """A jitted `key -> dict of device arrays` playing `num_games` episodes (see `record`) through
    `idsjax.rollout` on the game as a two-player game (`JointGame`). A generated family's games also
    return their networks (`"network"`, stacked `ScenarioParams`)."""
    steps = episode_horizon(params) if max_steps is None else int(max_steps)
    if steps < 1 or num_games < 1:
        raise ValueError("num_games and max_steps must be positive")
    game = JointGame(env)
    policy = joint_policy(make_joint_policy_step(env, params, attacker_policy, defender_policy))
    generated = _kind(env) == GENERATED

    def final_flags(t: Transition):
        return {
            "hacked_final": t.next_state.hacked,
            "detected_final": t.next_state.detected,
            "timed_out_final": t.next_state.timed_out,
        }

    @jax.jit
    def run(key):
        episodes = rollout(
            game,
            params,
            policy,
            key,
            num_games,
            num_steps=steps,
            accumulate=lambda t: (),
            outcome=final_flags,
            record=lambda t: _step_record(t, observations),
        )
        out = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), episodes.records)  # [B, T, ...]
        first = _keep(episodes.initial_state)
        if observations:
            views = jax.vmap(lambda s: {f: game.env.side_observation(s, side) for side, f in _SIDES})
            first.update(views(episodes.initial_state))
        out = _with_initial(out, first, axis=1)
        out["length"] = episodes.length
        out.update(episodes.outcome)
        # A finished game's later steps play no part: their keys are kept as zeros, which compress
        # (a file of short games would otherwise be mostly keys).
        out["reset_key"], step_key = rollout_keys(key, num_games, steps)
        out["step_key"] = jnp.where(out["valid"][..., None], step_key, jnp.zeros_like(step_key))
        if generated:
            out["network"] = episodes.initial_state.network
        return out

    return run


def _finish(out: dict) -> dict[str, np.ndarray]:
    """Host arrays of a recording; the returns summed here, so that a replay sums them the same way."""
    arrays = {k: np.asarray(v) for k, v in out.items()}
    arrays["returns"] = arrays["rewards"].sum(axis=1)
    return arrays


def record(
    env_or_id,
    attacker_policy=None,
    defender_policy=None,
    *,
    num_games: int = 16,
    max_steps: int | None = None,
    seed: int = 0,
    instance_seed: int = 0,
    scenario=None,
    observations: bool = False,
) -> Trajectories:
    """Play `num_games` episodes of one game on the device and return them.

    `env_or_id`: a registered id (made with `instance_seed`) or the `(env, params)` pair of any game
    (`idsjax.make`, `make_scenario`, `make_generated`; a batch of scenarios is refused). Policies as
    in `idsjax.policies` (default: the game's bot on its bot side, `"random"` on the learner's side;
    random bots in the two-agent mode); callables must be jittable. `scenario`: the `Scenario` a
    scenario game was made from, kept to name its nodes. `observations`: keep both sides' views.
    """
    env, params = _resolve(env_or_id, instance_seed)
    _kind(env)
    _check_one_game(params)
    run = make_recorder(
        env,
        params,
        attacker_policy,
        defender_policy,
        num_games=num_games,
        max_steps=max_steps,
        observations=observations,
    )
    out = jax.device_get(run(jax.random.PRNGKey(seed)))
    networks = out.pop("network", None)
    names = [
        policy_name(p) if p is not None else default_policy(env, side)
        for p, side in ((attacker_policy, ATTACKER), (defender_policy, DEFENDER))
    ]
    return Trajectories.of_game(
        env,
        params,
        arrays=_finish(out),
        seed=seed,
        attacker=names[0],
        defender=names[1],
        instance_seed=instance_seed,
        networks=networks,
        scenario=scenario,
    )


# -- replay -----------------------------------------------------------------------------------------
def _replay_game(game: JointGame, observations: bool, reset_key, step_keys, attack, defense, recorded, params):
    """One recorded game played again from its keys and joint actions, as `rollout` played it, up to
    the end of its episode or of the steps recorded (`recorded`: the recording's valid steps; a
    recorder may stop an episode short, as the server does with the one a game is left in)."""
    obs, state = game.reset(reset_key, params)
    initial = _keep(state)
    if observations:
        initial.update({f: obs[side] for side, f in _SIDES})

    def body(carry, x):
        state, obs, alive = carry
        key, a, d, played = x
        valid = alive & played
        action = {ATTACKER: a, DEFENDER: d}
        next_obs, next_state, reward, terminated, truncated, info = game.step(key, state, action, params)
        done = terminated | truncated
        t = Transition(obs, state, action, reward, done, next_obs, next_state, info, valid)
        state = jax.tree.map(lambda new, old: _where(valid, new, old), next_state, state)
        obs = jax.tree.map(lambda new, old: _where(valid, new, old), next_obs, obs)
        return (state, obs, alive & ~(valid & done)), _step_record(t, observations)

    carry = (state, obs, jnp.bool_(True))
    (final, _, alive), out = jax.lax.scan(body, carry, (step_keys, attack, defense, recorded))
    out = _with_initial(out, initial, axis=0)
    finished = ~alive
    out["length"] = out["valid"].sum().astype(jnp.int32)
    out["hacked_final"] = finished & final.hacked
    out["detected_final"] = finished & final.detected
    out["timed_out_final"] = finished & final.timed_out
    return out


@functools.lru_cache(maxsize=16)
def _replayer(env, per_game_params: bool):
    """The compiled replay of games of `env` (one per environment: equal environments share it)."""
    one = functools.partial(_replay_game, JointGame(env), True)
    params_axes = env.default_params.replace(max_steps_in_episode=None, pool=0) if per_game_params else None
    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0, params_axes)))


def replay(traj: Trajectories, *, check: bool = True) -> Trajectories:
    """Play the recorded joint actions again on the game the recording names, from the keys each
    game was reset and stepped with, and return what that gives (the same fields, both sides'
    observations included). With `check` (default), every array of the recording must come out equal,
    bit for bit, else `ReplayError` says where the replay first departs from the recording."""
    env, params = traj.make_game()
    a = traj.arrays
    keys = (a["reset_key"], a["step_key"]) if "reset_key" in a else None
    if keys is None:  # format 1: `record` played the keys its seed gives
        keys = jax.device_get(rollout_keys(jax.random.PRNGKey(traj.seed), traj.num_games, traj.num_steps))
    generated = traj.kind == GENERATED
    if generated:  # each game resets onto its own network: a pool of one
        params = params.replace(pool=jax.tree.map(lambda x: x[:, None], traj.networks()))
    run = _replayer(env, generated)
    out = jax.device_get(run(keys[0], keys[1], a["attack_action"], a["defense_action"], a["valid"], params))
    arrays = _finish(out)
    arrays["reset_key"], arrays["step_key"] = (np.asarray(k) for k in keys)
    played = dataclasses.replace(traj, arrays=arrays)
    if check:
        _compare(traj, played)
    return played


def _compare(recorded: Trajectories, played: Trajectories) -> None:
    """Raise `ReplayError` at the earliest step (then game) where any recorded array and its replay
    differ in a bit (floats too: -0.0 is not 0.0)."""
    first = None
    for field, want in recorded.arrays.items():
        if field in KEY_FIELDS:
            continue
        got = played.arrays.get(field)
        if got is None:
            raise ReplayError(f"{recorded.env_id}: the recording's field {field!r} is not one a replay gives")
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ReplayError(
                f"{recorded.env_id}: the replayed {field} has shape {got.shape} {got.dtype}, "
                f"the recorded one {want.shape} {want.dtype}"
            )
        if want.dtype.kind == "f":
            differ = want.view(f"u{want.itemsize}") != got.view(f"u{got.itemsize}")
        else:
            differ = want != got
        if differ.any():
            where = tuple(int(i) for i in np.argwhere(differ)[0])
            # When it happened: a state index counts the steps played; a step leads to the next state.
            time = recorded.num_steps + 1 if field in OUTCOME_FIELDS else where[1] + (field in STEP_FIELDS)
            order = (time, where[0], _FIELD_ORDER.get(field, len(_FIELD_ORDER)))  # views after their states
            if first is None or order < first[0]:
                first = (order, field, where, want[where].item(), got[where].item())
    if first is not None:
        (time, game, _), field, where, want, got = first
        element = f" element {where[2:]}" if len(where) > 2 else ""
        raise ReplayError(
            f"{recorded.env_id}: the replay departs from the recording at game {game}, step {time}: its {field}"
            f"{element} was {want!r} and is {got!r} (a recording of another recorder that kept no keys, or a "
            "game that has changed since it was recorded)"
        )


# -- files ------------------------------------------------------------------------------------------
def save_trajectories(path, traj: Trajectories) -> str:
    """Write `traj` as a compressed `.npz` (arrays in their own compact dtypes, metadata as JSON)."""
    path = os.fspath(path)
    meta = {
        "format": FORMAT_VERSION,
        "env_id": traj.env_id,
        "instance_seed": traj.instance_seed,
        "seed": traj.seed,
        "attacker": traj.attacker,
        "defender": traj.defender,
        "game": traj.game,
    }
    clash = set(traj.arrays) & set(traj.game_arrays)
    if clash:
        raise ValueError(f"game arrays and recorded arrays share the names {sorted(clash)}")
    with open(path, "wb") as f:
        np.savez_compressed(
            f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **traj.arrays, **traj.game_arrays
        )
    return path


def load_trajectories(path) -> Trajectories:
    """Read a file written by `save_trajectories` (this format or format 1)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "__meta__" not in data.files:
            raise ValueError(f"{os.fspath(path)!r} is not an idsjax trajectory file (no metadata)")
        meta = json.loads(bytes(data["__meta__"]).decode())
        if meta.get("format") not in (1, FORMAT_VERSION):
            raise ValueError(
                f"unsupported trajectory format {meta.get('format')!r} (this idsjax reads 1 and {FORMAT_VERSION})"
            )
        every = {k: np.array(data[k]) for k in data.files if k != "__meta__"}
    is_game = lambda k: k.startswith((PARAMS, NETWORK))  # noqa: E731
    return Trajectories(
        env_id=meta["env_id"],
        instance_seed=meta["instance_seed"],
        seed=meta["seed"],
        attacker=meta["attacker"],
        defender=meta["defender"],
        arrays={k: v for k, v in every.items() if not is_game(k)},
        game=meta.get("game"),
        game_arrays={k: v for k, v in every.items() if is_game(k)},
    )


# -- drawing ----------------------------------------------------------------------------------------
def trajectory_frames(traj: Trajectories, game: int = 0, *, view: str = "full") -> list[np.ndarray]:
    """Render one recorded game, frame by frame (`idsjax.frames.render_frame`)."""
    from idsjax.frames import render_frame

    env, params = traj.make_game()
    scenario = traj.scenario()
    frames = []
    returns = np.zeros(2)
    title = f"{traj.env_id}: {traj.attacker} vs {traj.defender} (game {game})"
    for t in range(int(traj.arrays["length"][game]) + 1):
        last = traj.joint_action(game, t - 1) if t else None
        if t:
            returns = returns + traj.arrays["rewards"][game, t - 1]
        frames.append(
            render_frame(
                env,
                traj.state(game, t),
                params,
                view=view,
                last_action=last,
                returns=(float(returns[0]), float(returns[1])),
                title=title,
                attack_from=int(traj.arrays["position"][game, t - 1]) if t else None,
                scenario=scenario,
            )
        )
    return frames


def trajectory_gif(
    traj: Trajectories, game: int = 0, path="trajectory.gif", *, view: str = "full", fps: float = 4.0
) -> str:
    """Write one recorded game as a GIF."""
    from idsjax.frames import write_gif

    return write_gif(trajectory_frames(traj, game, view=view), path, fps=fps)


__all__ = [
    "ReplayError",
    "Trajectories",
    "load_trajectories",
    "make_recorder",
    "record",
    "replay",
    "rollout_keys",
    "save_trajectories",
    "trajectory_frames",
    "trajectory_gif",
]
