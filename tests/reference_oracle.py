"""Driving the reference implementation (gym-idsgame 1.0.13) as a test oracle for idsjax.

What this module gives the parity tests (spec §13.1):

- `reference_module()` / `reference_util()`: the reference's modules, imported lazily; a test that calls
  them is *skipped* with a clear reason when gym-idsgame is not installed (`make reference` installs it).
- `ReferenceGame`: one reference environment class built directly (`IdsGame<Mode>V<k>Env`, never through
  `gym.make`), whose `step` records the uniforms the reference draws with `np.random.rand` (only
  detection draws them) and the actions its scripted bot chose, so that the JAX transition can be fed
  exactly the same joint action and the same randomness.
- conversions between the reference's state (a `GameState` plus the per-episode histories kept on the
  environment object, spec §2.2) and `idsjax.types.EnvState`, both ways, and a field-by-field
  comparison with readable failure messages.
- `float32_uniform`: the float64 uniform of the reference turned into the float32 uniform that makes the
  JAX detection test `u32 < det/10·factor` agree with the reference's float64 test for every detection
  value (a plain cast can flip the comparison when the draw lies within a float32 ulp of a threshold).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idsjax import observations
from idsjax.config import GameConfig
from idsjax.transition import transition
from idsjax.types import VALUE_DTYPE, EnvParams, EnvState
from idsjax.versions import ENV_IDS, Mode

REFERENCE_MISSING = (
    "gym-idsgame 1.0.13 (the reference implementation used as test oracle) is not installed; "
    "`make reference` installs it"
)

# The reference's class-name infix of each mode (`IdsGame<Mode>V<k>Env`).
MODE_CLASS_INFIX = {
    Mode.TWO_AGENT: "",
    Mode.RANDOM_DEFENSE: "RandomDefense",
    Mode.MINIMAL_DEFENSE: "MinimalDefense",
    Mode.RANDOM_ATTACK: "RandomAttack",
    Mode.MAXIMAL_ATTACK: "MaximalAttack",
}

# Detection values never exceed 10 in a registered version (v13 starts at 10, v15 has M = 10); the
# uniform helper keeps every threshold up to this one consistent.
MAX_DETECTION_CHECKED = 20


def parse_env_id(env_id: str) -> tuple[int, Mode]:
    assert env_id in ENV_IDS, env_id
    body, version = env_id.rsplit("-v", 1)
    mode = body[len("idsgame-") :] if body != "idsgame" else ""
    return int(version), Mode(mode)


# ---------------------------------------------------------------------------------------------------
# Lazy import of the reference
# ---------------------------------------------------------------------------------------------------
# Set IDSJAX_TESTS_WITHOUT_REFERENCE=1 to run the suite as if the reference were not installed (the
# JAX halves of the targeted cases run, everything needing the oracle skips).
FORCE_NO_REFERENCE = os.environ.get("IDSJAX_TESTS_WITHOUT_REFERENCE", "") not in ("", "0")


@contextlib.contextmanager
def quiet_reference():
    """Import the reference without its noise, in the test process only: its deprecation warnings, and
    the banner gym 0.26 prints on stderr at its first import ("Gym has been unmaintained since 2022 ...",
    from the package gym_notices). Anything else written to stderr meanwhile still gets there."""
    buffer = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            yield
    finally:
        text = buffer.getvalue()
        try:
            from gym_notices import notices
        except ImportError:
            notices = None
        for banner in getattr(notices, "notices", {}).values() if notices else ():
            text = text.replace(banner + "\n", "")
        if text:
            sys.stderr.write(text)


def _import_quietly(name: str):
    if FORCE_NO_REFERENCE:
        pytest.skip(REFERENCE_MISSING + " (IDSJAX_TESTS_WITHOUT_REFERENCE is set)")
    with quiet_reference():
        return pytest.importorskip(name, reason=REFERENCE_MISSING)


@functools.cache
def reference_available() -> bool:
    """Whether the reference can be imported (for tests whose JAX half runs either way)."""
    if FORCE_NO_REFERENCE:
        return False
    try:
        with quiet_reference():
            import gym_idsgame.envs.idsgame_env  # noqa: F401
    except ImportError:
        return False
    return True


def reference_module():
    """`gym_idsgame.envs.idsgame_env`, or skip the calling test when the reference is missing."""
    return _import_quietly("gym_idsgame.envs.idsgame_env")


def reference_util():
    """`gym_idsgame.envs.util.idsgame_util` (legality helpers, `defense_score`)."""
    reference_module()
    return _import_quietly("gym_idsgame.envs.util.idsgame_util")


def reference_class(version: int, mode: Mode):
    return getattr(reference_module(), f"IdsGame{MODE_CLASS_INFIX[mode]}V{version}Env")


def build_reference(version: int, mode: Mode, seed: int | None = None):
    """Construct the reference class directly. Construction draws the vulnerability layout from
    NumPy's global generator (spec §3.1), so `seed` (when given) seeds it first."""
    cls = reference_class(version, mode)
    if seed is not None:
        np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls()


# ---------------------------------------------------------------------------------------------------
# Uniforms
# ---------------------------------------------------------------------------------------------------
@functools.cache
def _float32_thresholds(factor: float) -> np.ndarray:
    """The JAX transition's detection thresholds `float32(det) / 10 * factor` for det = 0 … 20, computed
    by XLA with the same expression so the rounding is the transition's own."""
    det = jnp.arange(MAX_DETECTION_CHECKED + 1).astype(jnp.float32)
    return np.asarray(det / 10.0 * jnp.float32(factor))


def _float64_thresholds(factor: float) -> np.ndarray:
    # The reference: `defense_det[n] / 10` (int32 / int → float64), times the factor for reconnaissance.
    return np.array([(np.int32(d) / 10) * factor for d in range(MAX_DETECTION_CHECKED + 1)])


def float32_uniform(u: float, factor: float = 1.0) -> np.float32:
    """The float32 uniform to feed the JAX transition for a reference draw `u` (float64 in [0, 1)).

    Starts from the nearest float32 and moves it by single ulps until `u32 < threshold32[k]` equals
    `u < threshold64[k]` for every detection value k; the result stays in [0, 1).
    """
    u = float(u)
    assert 0.0 <= u < 1.0, u
    want = u < _float64_thresholds(factor)
    thresholds = _float32_thresholds(float(factor))
    u32 = np.float32(u)
    if u32 >= np.float32(1.0):
        u32 = np.nextafter(np.float32(1.0), np.float32(0.0))
    for _ in range(64):
        got = u32 < thresholds
        wrong = np.flatnonzero(got != want)
        if wrong.size == 0:
            return u32
        # got True where want False: u32 is too small for that threshold, and vice versa.
        direction = np.float32(np.inf) if got[wrong[0]] else np.float32(-np.inf)
        u32 = np.nextafter(u32, direction)
    raise AssertionError(f"no float32 uniform reproduces the reference's comparisons for u={u!r}")


# ---------------------------------------------------------------------------------------------------
# Driving the reference
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StepRecord:
    """What one reference `step()` returned and consumed."""

    attacker_obs: np.ndarray
    defender_obs: np.ndarray
    reward: tuple
    done: bool
    info: dict
    uniforms: list  # float64 draws of np.random.rand during the step (detection only)
    attacker_bot_action: int | None  # what the attacker bot chose (defender envs), if asked
    defender_bot_action: int | None  # what the defender bot chose (attacker envs), if asked
    attack_applied: int  # the global attack id the JAX transition must be given
    defense_applied: int  # the defense id the JAX transition must be given

    @property
    def reward32(self) -> np.ndarray:
        return np.array([np.float32(self.reward[0]), np.float32(self.reward[1])], dtype=np.float32)


class _RecordingBot:
    """Wraps a reference bot's `action` method and logs every choice."""

    def __init__(self, agent):
        self.agent = agent
        self.original = agent.action
        self.log: list[int] = []
        agent.action = self

    def __call__(self, game_state):
        choice = self.original(game_state)
        self.log.append(int(choice))
        return choice


@contextlib.contextmanager
def recording_rand(log: list):
    """Replace `numpy.random.rand` by a recorder of the values it returns (same stream)."""
    original = np.random.rand

    def rand(*args):
        value = original(*args)
        log.append(value)
        return value

    np.random.rand = rand
    try:
        yield log
    finally:
        np.random.rand = original


@contextlib.contextmanager
def injected_rand(values: list):
    """Make `numpy.random.rand()` return `values` in order (a test's chosen detection uniforms); the
    test asserts afterwards that all of them were consumed (`values` is emptied as they are)."""
    original = np.random.rand

    def rand(*args):
        assert not args, "the reference only draws scalar uniforms during step()"
        assert values, "the reference drew more uniforms than the test supplied"
        return values.pop(0)

    np.random.rand = rand
    try:
        yield values
    finally:
        np.random.rand = original


class ReferenceGame:
    """One reference environment plus the JAX config of the same id.

    `version`, `mode`: the id. `reference_mode`: the reference class to build, by default the same mode;
    `random_attack-v18…v21` crash on their first step (spec Q10), so tests drive those ids with the
    two-agent class and explicit actions instead.
    """

    def __init__(self, version: int, mode: Mode, seed: int | None = None, reference_mode: Mode | None = None):
        self.version, self.mode = version, mode
        self.reference_mode = mode if reference_mode is None else reference_mode
        self.config = GameConfig.create(version, mode)
        self.env = build_reference(version, self.reference_mode, seed)
        cfg = self.env.idsgame_config
        self.attacker_bot = _RecordingBot(cfg.attacker_agent) if cfg.attacker_agent is not None else None
        self.defender_bot = _RecordingBot(cfg.defender_agent) if cfg.defender_agent is not None else None

    # -- the static side ------------------------------------------------------------------------
    @property
    def game_config(self):
        return self.env.idsgame_config.game_config

    @property
    def network_config(self):
        return self.game_config.network_config

    def params(self, base: EnvParams | None = None) -> EnvParams:
        """`base` (default: `base_params(config)`) with the reference instance's construction-time state
        (dense-v3 reference score, and the layout every reset restores in non-randomised versions)."""
        base = base_params(self.config) if base is None else base
        init = self.game_config.initial_state
        return _compiled_with_initial_state(_transition_key(self.config))(
            base, init.attack_values, init.defense_values, init.defense_det, init.reconnaissance_state
        )

    # -- dynamics -------------------------------------------------------------------------------
    def reset(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.env.reset()

    def step(self, attack_action, defense_action) -> StepRecord:
        """One reference step with `(attack_action, defense_action)` as given to the reference (bots
        decide their side in single-agent classes; `-1` silences the attacker bot of defender envs)."""
        uniforms: list = []
        for bot in (self.attacker_bot, self.defender_bot):
            if bot is not None:
                bot.log.clear()
        with warnings.catch_warnings(), recording_rand(uniforms):
            warnings.simplefilter("ignore")
            obs, reward, done, info = self.env.step((attack_action, defense_action))
        att_bot = self.attacker_bot.log[-1] if self.attacker_bot and self.attacker_bot.log else None
        def_bot = self.defender_bot.log[-1] if self.defender_bot and self.defender_bot.log else None
        for bot in (self.attacker_bot, self.defender_bot):
            if bot is not None:
                assert len(bot.log) <= 1, "a bot was asked more than once in one step"
        # Bots are not asked on step-limit calls (nothing is applied then): -1 stands for "none".
        attack_applied, defense_applied = attack_action, defense_action
        if self.reference_mode.learner == "defender":
            attack_applied = -1 if attack_action == -1 or att_bot is None else att_bot
        if self.reference_mode.learner == "attacker":
            defense_applied = -1 if def_bot is None else def_bot
        return StepRecord(
            attacker_obs=obs[0],
            defender_obs=obs[1],
            reward=tuple(reward),
            done=bool(done),
            info=dict(info),
            uniforms=list(uniforms),
            attacker_bot_action=att_bot,
            defender_bot_action=def_bot,
            attack_applied=int(attack_applied),
            defense_applied=int(defense_applied),
        )

    def observations(self):
        return self.env.get_observation()

    # -- state ----------------------------------------------------------------------------------
    def node_of(self, pos) -> int:
        r, c = int(pos[0]), int(pos[1])
        node = int(self.config.network.cell_node[r, c])
        assert node >= 0, f"attacker position {pos} is an empty cell"
        return node

    def state_arrays(self) -> dict:
        return reference_state_arrays(self.config, self.env)

    def jax_state(self) -> EnvState:
        return jax_state_from_reference(self.config, self.env)

    def load(self, state: EnvState) -> None:
        load_into_reference(self.config, self.env, state)


# The reference's `max_steps` (101 moves, then the step-limit call) and idsjax's horizon for it: idsjax
# counts every transition of an episode, the step-limit one included (`transition`'s docstring).
REFERENCE_MAX_STEPS = 100


def horizon_for_reference(max_steps: int = REFERENCE_MAX_STEPS) -> int:
    """`params.max_steps_in_episode` that plays as the reference's `max_steps`."""
    return max_steps + 2


def base_params(config: GameConfig) -> EnvParams:
    """The numbers the transition reads (`max_value`, detection factor, step limit) without drawing a
    layout: `idsjax.make` draws one eagerly, which costs seconds per id. `test_targeted_cases` checks
    that `make` gives these same numbers."""
    return EnvParams(
        max_steps_in_episode=horizon_for_reference(),
        max_value=np.int32(config.spec.max_value),
        detection_factor=np.float32(1.0),
    )


class Legality:
    """The reference's id-level attack legality (`is_attack_id_legal`, spec §1.7) computed from the
    reference's own adjacency matrix and node positions, fast enough to call every step."""

    def __init__(self, game: ReferenceGame):
        nc = game.network_config
        self.width = game.config.attack_id_width
        self.types = game.config.attack_types
        self.num_ids = game.config.num_attack_ids
        self.max_value = game.game_config.max_value
        self.pos = [nc.get_node_pos(n) for n in range(game.config.num_nodes)]
        self.cols = nc.num_cols
        self.adj = np.asarray(nc.adjacency_matrix)

    def legal_ids(self, state) -> list[int]:
        ar, ac = state.attacker_pos
        out = []
        for a in range(self.num_ids):
            node, kind = divmod(a, self.width)
            recon = kind >= self.types
            if not recon and state.attack_values[node][kind] >= self.max_value:
                continue
            tr, tc = self.pos[node]
            if (tr, tc) == (ar, ac) or tr > ar:
                continue
            if self.adj[ar * self.cols + ac, tr * self.cols + tc] == 1:
                out.append(a)
        return out


# ---------------------------------------------------------------------------------------------------
# State conversion
# ---------------------------------------------------------------------------------------------------
COMPARED_FIELDS = (
    "attack",
    "defense",
    "detection",
    "recon",
    "revealed",
    "position",
    "time",
    "done",
    "hacked",
    "detected",
    "failed",
    "num_failed",
    "furthest_row",
    "num_hacked",
    "recon_targeted",
)


def reference_state_arrays(config: GameConfig, env) -> dict:
    """The reference's state and per-episode histories as the arrays of `EnvState` (spec §2.3)."""
    n, a = config.num_nodes, config.attack_types
    s = env.state
    revealed = np.zeros(n, bool)
    for node in s.reconnaissance_actions:
        revealed[int(node)] = True
    failed = np.zeros((n, a), np.int64)
    for (node, attack_type), count in env.failed_attacks.items():
        failed[int(node), int(attack_type)] = int(count)
    recon_targeted = np.zeros(n, bool)
    for node, _ in env.past_reconnaissance_activities:
        recon_targeted[int(node)] = True
    r, c = s.attacker_pos
    return {
        "attack": np.asarray(s.attack_values, np.int64),
        "defense": np.asarray(s.defense_values, np.int64),
        "detection": np.asarray(s.defense_det, np.int64),
        "recon": np.asarray(s.reconnaissance_state, np.int64),
        "revealed": revealed,
        "position": np.int64(config.network.cell_node[int(r), int(c)]),
        "time": np.int64(s.game_step),
        "done": bool(s.done),
        "hacked": bool(s.hacked),
        "detected": bool(s.detected),
        "failed": failed,
        "num_failed": np.int64(env.num_failed_attacks),
        "furthest_row": np.int64(env.furthest_hack),
        "num_hacked": np.int64(len(env.hacked_nodes)),
        "recon_targeted": recon_targeted,
    }


def jax_state_arrays(state: EnvState) -> dict:
    host = jax.device_get(state)
    out = {}
    for name in COMPARED_FIELDS:
        value = np.asarray(getattr(host, name))
        out[name] = value.astype(bool) if value.dtype == bool else value.astype(np.int64)
    return out


def jax_state_from_reference(config: GameConfig, env) -> EnvState:
    """The reference's current state as an `EnvState` (start both implementations from one state)."""
    arrays = reference_state_arrays(config, env)
    # Values are converted on the host: `device_put` only, no per-shape compiled conversions.
    v = np.dtype(VALUE_DTYPE)

    def put(value, dtype):
        return jax.device_put(np.asarray(value, dtype))

    return EnvState.create(
        time=put(arrays["time"], np.int32),
        attack=put(arrays["attack"], v),
        defense=put(arrays["defense"], v),
        detection=put(arrays["detection"], v),
        recon=put(arrays["recon"], v),
        revealed=put(arrays["revealed"], bool),
        position=put(arrays["position"], np.int32),
        done=put(arrays["done"], bool),
        hacked=put(arrays["hacked"], bool),
        detected=put(arrays["detected"], bool),
        failed=put(arrays["failed"], v),
        num_failed=put(arrays["num_failed"], np.int32),
        furthest_row=put(arrays["furthest_row"], np.int32),
        num_hacked=put(arrays["num_hacked"], np.int32),
        recon_targeted=put(arrays["recon_targeted"], bool),
        timed_out=put(False, bool),
    )


def load_into_reference(config: GameConfig, env, state: EnvState) -> None:
    """Overwrite the reference's state and histories with a JAX state (the other direction).

    Lists the reference only tests for membership or length are rebuilt with one entry per fact:
    revealed nodes, reconnaissance-targeted nodes (type 0), hacked nodes (node ids are irrelevant to
    every reader, only the count is used).
    """
    arrays = jax_state_arrays(state)
    net = config.network
    s = env.state
    s.attack_values = arrays["attack"].astype(np.int32)
    s.defense_values = arrays["defense"].astype(np.int32)
    s.defense_det = arrays["detection"].astype(np.int32)
    s.reconnaissance_state = arrays["recon"].astype(np.int32)
    s.reconnaissance_actions = [int(n) for n in np.flatnonzero(arrays["revealed"])]
    node = int(arrays["position"])
    s.attacker_pos = (int(net.node_row[node]), int(net.node_col[node]))
    s.game_step = int(arrays["time"])
    s.done, s.hacked, s.detected = bool(arrays["done"]), bool(arrays["hacked"]), bool(arrays["detected"])
    env.failed_attacks = {(int(n), int(t)): int(arrays["failed"][n, t]) for n, t in zip(*np.nonzero(arrays["failed"]))}
    env.num_failed_attacks = int(arrays["num_failed"])
    env.furthest_hack = int(arrays["furthest_row"])
    env.hacked_nodes = [node] * int(arrays["num_hacked"])
    env.past_reconnaissance_activities = [(int(n), 0) for n in np.flatnonzero(arrays["recon_targeted"])]


def assert_states_equal(config: GameConfig, reference: dict, port: dict, where: str = "") -> None:
    mismatches = []
    for name in COMPARED_FIELDS:
        if not np.array_equal(reference[name], port[name]):
            mismatches.append(f"  {name}: reference={reference[name]!r} idsjax={port[name]!r}")
    if mismatches:
        raise AssertionError(f"{config.env_id} state mismatch {where}:\n" + "\n".join(mismatches))


def assert_observation_equal(reference_obs: np.ndarray, port_obs, what: str, where: str = "") -> None:
    port_obs = np.asarray(port_obs)
    assert reference_obs.shape == port_obs.shape, f"{what} shape {reference_obs.shape} != {port_obs.shape} {where}"
    # The reference's arrays are float64 (int64 for local views) of small integers; ours are int8.
    assert np.array_equal(reference_obs, port_obs.astype(np.float64)), (
        f"{what} mismatch {where}:\nreference=\n{reference_obs}\nidsjax=\n{port_obs}"
    )


# ---------------------------------------------------------------------------------------------------
# The reference bots' choices on a state, written from the reference's code (spec §8)
# ---------------------------------------------------------------------------------------------------
def defend_minimal_support(cfg: GameConfig, arrays: dict) -> tuple[int | None, set]:
    """DefendMinimal's choice on a state, mirroring the reference's loop (§8.2, Q12): `(choice, {choice})`
    when deterministic, `(None, tie ids)` when it draws among >= 2 later ties."""
    a = cfg.attack_types
    best, best_id, ties = np.inf, -1, []
    for n in np.flatnonzero(cfg.network.defendable):
        de, det = arrays["defense"][n], arrays["detection"][n]
        k = int(np.argmin(de))
        if det < de[k]:
            if det < best:
                best, best_id, ties = det, n * (a + 1) + a, []
        elif de[k] < best:
            best, best_id, ties = de[k], n * (a + 1) + k, []
        elif de[k] == best:
            ties.append(n * (a + 1) + k)
    if len(ties) > 1:
        return None, set(ties)
    return best_id, {best_id}


def attack_maximal_support(cfg: GameConfig, arrays: dict, legal: list[int]) -> tuple[int | None, set]:
    """AttackMaximal's choice on a state (`legal`: the id-legal global ids): `(choice, {choice})` when
    it is deterministic, else `(None, support of its random fallback)` (§8.3, Q11, Q13)."""
    net = cfg.network
    pos = int(arrays["position"])
    if not cfg.reconnaissance:
        best, best_id = -np.inf, -1
        for n in np.flatnonzero(net.defendable):
            k = int(np.argmax(arrays["attack"][n]))
            action = n * cfg.attack_types + k
            if arrays["attack"][n][k] > best and action in legal and net.node_row[n] < net.node_row[pos]:
                best, best_id = arrays["attack"][n][k], action
        if best_id != -1:
            return best_id, {best_id}
        return None, set(legal) if legal else set(range(cfg.num_attack_actions))
    width = cfg.attack_id_width
    if cfg.spec.local_view:
        slots = cfg.local_view_slots[pos]
        local = [
            (l, int(slots[l // width]) * width + l % width)
            for l in range(cfg.num_attack_actions)
            if slots[l // width] >= 0 and int(slots[l // width]) * width + l % width in legal
        ]
    else:
        local = [(g, g) for g in legal]
    best, best_id = np.inf, -1
    for _, g in local:
        n, kind = divmod(g, width)
        if kind == cfg.attack_types and not arrays["revealed"][n]:
            return g, {g}
        if kind != cfg.attack_types and arrays["revealed"][n]:
            margin = arrays["recon"][n][kind] - arrays["attack"][n][kind]
            if margin < best:
                best, best_id = margin, g
    if best_id != -1:
        return best_id, {best_id}
    # The fallback draws a local id in v18 (Q11), a global one otherwise.
    return None, {l for l, _ in local} if local else set(range(cfg.num_attack_actions))


# ---------------------------------------------------------------------------------------------------
# Compiled JAX functions, one per transition-relevant config
# ---------------------------------------------------------------------------------------------------
def _transition_key(config: GameConfig) -> GameConfig:
    # The transition and the observations depend on the version's spec, not on who plays: the five
    # modes of a version share one compiled program (maximal_attack-v16/v17 have their own spec).
    return dataclasses.replace(config, mode=Mode.TWO_AGENT)


@functools.cache
def _compiled_step(key: GameConfig):
    def step(state, attack, defense, u, params):
        nxt, rewards, info = transition(key.shape, key.network_arrays(params), state, attack, defense, u, params)
        return (
            nxt,
            rewards,
            info,
            observations.attacker_observation(key.shape, key.network_arrays(params), nxt),
            observations.defender_observation(nxt),
        )

    return jax.jit(step)


@functools.cache
def _compiled_with_initial_state(key: GameConfig):
    from idsjax.env import IdsGameEnv

    return jax.jit(IdsGameEnv(key).with_initial_state)


@functools.cache
def _compiled_observe(key: GameConfig):
    return jax.jit(
        lambda state: (
            observations.attacker_observation(key.shape, key.network_arrays(), state),
            observations.defender_observation(state),
        )
    )


def jax_step_with_info(config: GameConfig, state, attack, defense, u, params):
    """The jitted transition + both observations of the next state, results on the host:
    `(state, rewards float32[2], info dict of bools, attacker obs, defender obs)`."""
    nxt, rewards, info, att, de = _compiled_step(_transition_key(config))(
        state, np.int32(attack), np.int32(defense), np.float32(u), params
    )
    info = {k: bool(v) for k, v in jax.device_get(info).items()}
    return nxt, np.asarray(rewards), info, np.asarray(att), np.asarray(de)


def jax_step(config: GameConfig, state, attack, defense, u, params):
    """Like `jax_step_with_info`, with only `info["moved"]`."""
    nxt, rewards, info, att, de = jax_step_with_info(config, state, attack, defense, u, params)
    return nxt, rewards, info["moved"], att, de


def jax_observe(config: GameConfig, state):
    att, de = _compiled_observe(_transition_key(config))(state)
    return np.asarray(att), np.asarray(de)


@functools.cache
def _compiled_bot_samples(key: GameConfig, name: str):
    from idsjax import bots

    bot = bots.BOTS[name]
    sample = jax.vmap(lambda k, state, params: bot(k, state, key, params), in_axes=(0, None, None))
    return jax.jit(sample)


@functools.cache
def _bot_keys(num: int):
    return jax.random.split(jax.random.PRNGKey(1234), num)


def jax_bot_choices(config: GameConfig, name: str, state: EnvState, params: EnvParams, num: int = 16) -> np.ndarray:
    """The JAX bot's choices on one state under `num` different keys (all equal when it is deterministic)."""
    keys = _bot_keys(num)
    return np.asarray(_compiled_bot_samples(_transition_key(config), name)(keys, state, params))


# ---------------------------------------------------------------------------------------------------
# Hand-made states
# ---------------------------------------------------------------------------------------------------
def make_state(
    config: GameConfig,
    *,
    defense,
    detection,
    position=None,
    attack=None,
    recon=None,
    revealed=None,
    time=0,
    failed=None,
    num_failed=0,
    furthest_row=None,
    num_hacked=0,
    recon_targeted=None,
) -> EnvState:
    """An `EnvState` from plain arrays (defaults: zero attack, unknown reconnaissance, nothing revealed,
    attacker on the start node, a fresh episode)."""
    n, a = config.num_nodes, config.attack_types
    v = np.dtype(VALUE_DTYPE)

    def put(value, dtype):
        return jax.device_put(np.asarray(value, dtype))

    return EnvState.create(
        time=put(time, np.int32),
        attack=put(np.zeros((n, a)) if attack is None else attack, v),
        defense=put(defense, v),
        detection=put(detection, v),
        recon=put(np.full((n, a), 10) if recon is None else recon, v),
        revealed=put(np.zeros(n) if revealed is None else revealed, bool),
        position=put(config.network.start_node if position is None else position, np.int32),
        done=put(False, bool),
        hacked=put(False, bool),
        detected=put(False, bool),
        failed=put(np.zeros((n, a)) if failed is None else failed, v),
        num_failed=put(num_failed, np.int32),
        furthest_row=put(config.network.rows - 1 if furthest_row is None else furthest_row, np.int32),
        num_hacked=put(num_hacked, np.int32),
        recon_targeted=put(np.zeros(n) if recon_targeted is None else recon_targeted, bool),
        timed_out=put(False, bool),
    )
