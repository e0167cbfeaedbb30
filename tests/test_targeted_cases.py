"""Targeted parity cases of spec §13.1, one small named test each.

Every scenario runs the JAX transition from a hand-made state and asserts the numbers the spec states for
the reference. When the reference (gym-idsgame 1.0.13) is installed, the same scenario is also played on
it (its two-agent class, loaded with the same state, fed the same uniforms) and every state field, both
observations, the reward pair and `info["moved"]` must agree at every step; tests that only make sense
against the reference skip without it.
"""

from __future__ import annotations

import collections
import os
import sys
import warnings

import jax
import numpy as np
import pytest

from idsjax import make, registered_envs
from idsjax.actions import attack_mask
from idsjax.config import GameConfig
from idsjax.network import DATA, SERVER, START
from idsjax.rewards import defense_score
from idsjax.versions import Mode, RewardFamily

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the oracle lives next to this file
from reference_oracle import (  # noqa: E402
    Legality,
    ReferenceGame,
    assert_observation_equal,
    assert_states_equal,
    attack_maximal_support,
    base_params,
    build_reference,
    defend_minimal_support,
    float32_uniform,
    horizon_for_reference,
    injected_rand,
    jax_bot_choices,
    jax_observe,
    jax_state_arrays,
    jax_step,
    load_into_reference,
    make_state,
    parse_env_id,
    reference_available,
    reference_util,
)

# Construction-time layouts of spec Appendix B (np.random.seed(12345), then construction).
APPENDIX_B = {
    0: ([[2, 0, 2, 2, 2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 0, 2, 2, 2, 2, 2], [0] * 10], [2, 2, 0]),
    8: ([[2, 0, 2, 2, 2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 0, 2, 2, 2, 2, 2], [0] * 10], [2, 2, 0]),
    11: ([[0, 0], [0, 0]], [1, 0]),
    13: ([[0, 0], [0, 0]], [10, 0]),
    19: ([[9, 1, 9, 9], [9, 9, 9, 9], [9, 9, 1, 9], [0, 0, 0, 0]], [1, 1, 1, 0]),
    20: ([[9, 1, 9, 9], [9, 9, 1, 9], [9, 9, 1, 9], [0, 0, 0, 0]], [1, 1, 1, 0]),
    21: ([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]], [1, 1, 1, 0]),
}


def two_agent(version: int) -> GameConfig:
    return GameConfig.create(version, Mode.TWO_AGENT)


class Scenario:
    """JAX transitions from a hand-made state, mirrored on the reference when it is installed.

    `initial` = (defense, detection) of the construction-time state (the dense-v3 reference score);
    by default the scenario's own starting state.
    """

    def __init__(self, version: int, state, initial=None):
        self.config = two_agent(version)
        self.state = state
        host = jax_state_arrays(state)
        init_defense, init_detection = initial if initial is not None else (host["defense"], host["detection"])
        n, a = self.config.num_nodes, self.config.attack_types
        init_attack = np.zeros((n, a), np.int32)
        init_recon = np.full((n, a), 10, np.int32)
        from idsjax.env import IdsGameEnv

        self.params = IdsGameEnv(self.config).with_initial_state(
            base_params(self.config), init_attack, np.asarray(init_defense), np.asarray(init_detection), init_recon
        )
        self.game = None
        if reference_available():
            self.game = ReferenceGame(version, Mode.TWO_AGENT, seed=0)
            init = self.game.game_config.initial_state
            init.attack_values = init_attack
            init.defense_values = np.asarray(init_defense, np.int32)
            init.defense_det = np.asarray(init_detection, np.int32)
            init.reconnaissance_state = init_recon
            self.game.reset()
            self.game.load(state)
            assert_states_equal(self.config, self.game.state_arrays(), host, "after loading the scenario")
        self.calls = 0

    def step(self, attack: int, defense: int, u: float | None = None):
        """One joint action; `u` is the detection uniform (None: none may be drawn). Returns
        (reward float32[2], moved)."""
        self.calls += 1
        where = f"[v{self.config.version} scenario call {self.calls}: ({attack}, {defense}), u={u}]"
        u32 = np.float32(1.0) if u is None else float32_uniform(u)
        self.state, reward, moved, att, de = jax_step(self.config, self.state, attack, defense, u32, self.params)
        if self.game is not None:
            supplied = [] if u is None else [u]
            with injected_rand(supplied):
                rec = self.game.step(attack, defense)
            assert not supplied, f"the reference drew no detection uniform {where}"
            assert len(rec.uniforms) == (0 if u is None else 1), where
            assert_states_equal(self.config, self.game.state_arrays(), jax_state_arrays(self.state), where)
            assert_observation_equal(rec.attacker_obs, att, "attacker observation", where)
            assert_observation_equal(rec.defender_obs, de, "defender observation", where)
            assert np.array_equal(rec.reward32, reward), f"reward reference={rec.reward} idsjax={reward} {where}"
            assert rec.info["moved"] == moved, where
        return reward, moved

    def arrays(self) -> dict:
        return jax_state_arrays(self.state)


def v_state(version: int, position=None, defense=None, detection=None, **fields):
    cfg = two_agent(version)
    d0, det0 = APPENDIX_B[version]
    return make_state(
        cfg,
        defense=d0 if defense is None else defense,
        detection=det0 if detection is None else detection,
        position=position,
        **fields,
    )


# ---------------------------------------------------------------------------------------------------
# v0: a forced sequence
# ---------------------------------------------------------------------------------------------------
def test_v0_forced_success_path_defense_before_attack():
    """v0 (Appendix B layout): attack the server's vulnerable type 4 while the defender raises the data
    node's detection: attack +1 > defense 0 → move, sparse (0, 0), no uniform drawn; then hack the data
    node through its vulnerable type 1 → (1, -1)."""
    sc = Scenario(0, v_state(0))
    reward, moved = sc.step(1 * 10 + 4, 0 * 11 + 10)
    s = sc.arrays()
    assert reward.tolist() == [0.0, 0.0] and moved
    assert s["attack"][1, 4] == 1 and s["position"] == 1 and s["detection"][0] == 3
    assert s["time"] == 1 and not s["done"] and s["num_hacked"] == 1 and s["num_failed"] == 0
    reward, moved = sc.step(0 * 10 + 1, 2 * 11 + 0)
    s = sc.arrays()
    assert reward.tolist() == [1.0, -1.0] and moved
    assert s["hacked"] and s["done"] and not s["detected"] and s["position"] == 0 and s["num_hacked"] == 2


def test_v0_forced_failure_detection_and_same_step_defense():
    """A failed attack draws detection (`u < det/10`): u = 0.9 ≥ 0.2 survives with (0, 0); a defense of
    exactly the attacked (node, type) in the same step offsets the increment (att 1 vs def 1 fails), and
    u = 0.1 < 0.2 detects → (-1, 1)."""
    sc = Scenario(0, v_state(0))
    reward, moved = sc.step(1 * 10 + 0, 0 * 11 + 10, u=0.9)  # type 0 of node 1 has defense 2
    s = sc.arrays()
    assert reward.tolist() == [0.0, 0.0] and not moved
    assert s["attack"][1, 0] == 1 and s["position"] == 2 and s["failed"][1, 0] == 1 and s["num_failed"] == 1
    assert not s["done"]
    reward, moved = sc.step(1 * 10 + 4, 1 * 11 + 4, u=0.1)  # defend exactly (node 1, type 4)
    s = sc.arrays()
    assert s["defense"][1, 4] == 1 and s["attack"][1, 4] == 1
    assert reward.tolist() == [-1.0, 1.0] and not moved
    assert s["detected"] and s["done"] and not s["hacked"] and s["failed"][1, 4] == 1 and s["num_failed"] == 2


def test_detection_threshold_is_strict():
    """det = 2: u just below 0.2 detects, u = 0.2 exactly does not (strict `<`, float64 in the reference)."""
    for u, detected in ((np.nextafter(0.2, 0.0), True), (0.2, False)):
        sc = Scenario(0, v_state(0))
        reward, _ = sc.step(1 * 10 + 0, 2 * 11 + 0, u=float(u))
        assert bool(sc.arrays()["detected"]) is detected
        assert reward.tolist() == ([-1.0, 1.0] if detected else [0.0, 0.0])


# ---------------------------------------------------------------------------------------------------
# Q2, Q5, Q4: start-node defense, "no attack", the step limit
# ---------------------------------------------------------------------------------------------------
def test_defend_start_node_q2():
    """The START node can be defended: its defense and detection values rise and show in the defender view."""
    sc = Scenario(0, v_state(0))
    start = 2
    sc.step(-1, start * 11 + 3)
    sc.step(-1, start * 11 + 10)
    sc.step(-1, start * 11 + 3)
    s = sc.arrays()
    assert s["defense"][start].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert s["detection"][start] == 1
    _, de = jax_observe(sc.config, sc.state)
    assert de[start].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1]


def test_no_attack_minus_one_still_defends_q5():
    sc = Scenario(0, v_state(0))
    before = sc.arrays()
    reward, moved = sc.step(-1, 1 * 11 + 4)  # no uniform may be drawn
    s = sc.arrays()
    assert reward.tolist() == [-1.0, 0.0] and not moved
    assert s["defense"][1, 4] == 1 and s["time"] == 1
    assert np.array_equal(s["attack"], before["attack"]) and s["num_failed"] == 0 and not s["failed"].any()
    assert not s["done"]


def test_illegal_attacks_are_minus_one():
    """Self, downward, non-adjacent and start-node targets are illegal: (-1, 0), no bookkeeping, no draw."""
    sc = Scenario(3, make_state(two_agent(3), defense=np.full((8, 10), 2), detection=[2] * 7 + [0], position=4))
    # v3: node 4 = (2,0). Illegal: itself (4), below it (7 = start), a non-adjacent server (5), data (0),
    # a same-row server without horizontal links (5, 6).
    for target in (4, 7, 5, 6, 0, 2, 3):
        reward, moved = sc.step(target * 10 + 1, 0 * 11 + 0)
        assert reward.tolist() == [-1.0, 0.0] and not moved
    s = sc.arrays()
    assert s["num_failed"] == 0 and not s["failed"].any() and not s["attack"].any() and s["time"] == 7
    reward, _ = sc.step(1 * 10 + 1, 0, u=0.99)  # (1,0) is directly above: legal, fails against defense 2
    assert reward.tolist() == [0.0, 0.0] and sc.arrays()["failed"][1, 1] == 1


def test_defense_minus_one_raises_in_reference_and_is_no_defense_here():
    """Documented difference: the reference raises on an undecodable defense id; idsjax treats it as no
    defense (an illegal attack still counts as a step)."""
    cfg = two_agent(0)
    state = v_state(0)
    nxt, reward, _, _, _ = jax_step(cfg, state, -1, -1, np.float32(1.0), base_params(cfg))
    s, s0 = jax_state_arrays(nxt), jax_state_arrays(state)
    assert np.array_equal(s["defense"], s0["defense"]) and np.array_equal(s["detection"], s0["detection"])
    assert reward.tolist() == [-1.0, 0.0] and s["time"] == 1
    nxt, _, _, _, _ = jax_step(cfg, state, -1, cfg.num_defense_actions, np.float32(1.0), base_params(cfg))
    assert np.array_equal(jax_state_arrays(nxt)["defense"], s0["defense"])
    if reference_available():
        game = ReferenceGame(0, Mode.TWO_AGENT, seed=0)
        game.reset()
        with pytest.raises(ValueError):
            game.step(-1, -1)


def test_step_limit_q4():
    """104 consecutive (-1, d): 101 × (-1, 0), then (-100, -100) with done, the step counter stuck at 101
    and the state unchanged."""
    sc = Scenario(0, v_state(0))
    rewards = []
    for call in range(104):
        before = sc.arrays()
        reward, _ = sc.step(-1, 1 * 11 + 10)  # raise the server's detection (caps at M = 9)
        rewards.append(reward.tolist())
        s = sc.arrays()
        if call < 101:
            assert s["time"] == call + 1 and not bool(np.asarray(sc.state.timed_out))
        else:
            assert bool(np.asarray(sc.state.timed_out)) and s["time"] == 101
            assert all(np.array_equal(before[k], s[k]) for k in s)
    assert rewards[:101] == [[-1.0, 0.0]] * 101
    assert rewards[101:] == [[-100.0, -100.0]] * 3
    assert sc.arrays()["detection"][1] == 9  # 2 + 101 raises, capped at M
    assert not sc.arrays()["done"]


@pytest.mark.parametrize("reference_max_steps", [0, 1, 3])
def test_step_limit_at_other_horizons(reference_max_steps, monkeypatch):
    """The reference's `MAX_GAME_STEPS = m` plays as `max_steps_in_episode = m + 2`: m + 1 moves, then
    the step-limit transition, which is transition number `max_steps_in_episode`. Checked against the
    reference with its constant patched to m, call for call (`Scenario.step`)."""
    horizon = horizon_for_reference(reference_max_steps)
    if reference_available():
        from gym_idsgame.envs.constants import constants

        monkeypatch.setattr(constants.GAME_CONFIG, "MAX_GAME_STEPS", reference_max_steps)
    sc = Scenario(0, v_state(0))
    sc.params = sc.params.replace(max_steps_in_episode=horizon)
    timed_out = []
    for _ in range(horizon + 2):
        reward, _ = sc.step(-1, 1 * 11 + 10)
        timed_out.append(bool(np.asarray(sc.state.timed_out)))
        assert reward.tolist() == ([-100.0, -100.0] if timed_out[-1] else [-1.0, 0.0])
    # The first step-limit transition is the horizon-th; the reference repeats it after (Q4).
    assert timed_out.index(True) + 1 == horizon
    assert all(timed_out[horizon - 1 :]) and sc.arrays()["time"] == horizon - 1


# ---------------------------------------------------------------------------------------------------
# v13 and DENSE1 numbers (§7.3)
# ---------------------------------------------------------------------------------------------------
def test_v13_hack_and_certain_detection():
    sc = Scenario(13, v_state(13))
    reward, moved = sc.step(0 * 2 + 0, 0 * 3 + 1)  # attack type 0, defend type 1
    assert reward.tolist() == [2.0, -1.0] and moved and sc.arrays()["hacked"]
    for u in (0.0, 0.5, 0.999999):
        sc = Scenario(13, v_state(13))
        reward, moved = sc.step(0 * 2 + 0, 0 * 3 + 0, u=u)  # defend the attacked type: 1 vs 1 fails
        assert reward.tolist() == [-1.0, 1.0] and not moved and sc.arrays()["detected"]


def test_dense1_examples_v8_v11():
    """v8: one failure then success into the server → (2.0, 0); two failures then hack → (1.5, -2);
    v11: first-try hack → (2, -1)."""
    sc = Scenario(8, v_state(8))
    assert sc.step(1 * 10 + 0, 2 * 11 + 0, u=0.9)[0].tolist() == [0.0, 0.0]
    assert sc.step(1 * 10 + 4, 2 * 11 + 0)[0].tolist() == [2.0, 0.0]
    assert sc.arrays()["furthest_row"] == 1
    assert sc.step(0 * 10 + 0, 2 * 11 + 0, u=0.9)[0].tolist() == [0.0, 0.0]
    assert sc.step(0 * 10 + 0, 2 * 11 + 0, u=0.9)[0].tolist() == [0.0, 0.0]
    assert sc.step(0 * 10 + 1, 2 * 11 + 0)[0].tolist() == [1.5, -2.0]
    sc = Scenario(11, v_state(11))
    assert sc.step(0, 1 * 3 + 0)[0].tolist() == [2.0, -1.0]


@pytest.mark.parametrize("num_failed", [1, 2, 3, 6, 7, 9, 11, 13, 49, 77, 99, 101])
def test_dense1_bonus_rounding(num_failed):
    """The DENSE1 reward `1 + 1/nf` equals the reference's float64 value cast to float32, for a server
    success and a hack, after `nf` consecutive failures."""
    expected = np.float32(1 / num_failed + 1)
    sc = Scenario(8, v_state(8, num_failed=num_failed))
    assert sc.step(1 * 10 + 4, 2 * 11 + 0)[0][0] == expected
    sc = Scenario(8, v_state(8, position=1, furthest_row=1, num_failed=num_failed, num_hacked=1))
    reward, _ = sc.step(0 * 10 + 1, 2 * 11 + 0)
    assert reward[0] == expected and reward[1] == -2.0


# ---------------------------------------------------------------------------------------------------
# Dense-v3 (§7.4, Q9, Q23)
# ---------------------------------------------------------------------------------------------------
V19_INITIAL = APPENDIX_B[19]
START_NOOP = 3 * 5 + 0  # defending the start node: changes no reward input (Q2)


def test_dense_v3_hack_3_minus_25():
    """Recon data, two failed type-3 attacks, then success: G = 1 + 2 failures = 3; defender ds - Dmax
    = 2 - 27 = -25."""
    defense = [[9, 9, 9, 2], [9, 9, 9, 9], [9, 9, 1, 9], [0, 0, 0, 0]]
    sc = Scenario(19, v_state(19, position=1, defense=defense), initial=V19_INITIAL)
    assert float(sc.params.reference_defense_score) == 1.0
    assert sc.step(0 * 5 + 4, START_NOOP, u=0.5)[0].tolist() == [0.0, 0.0]  # reconnaissance of the data node
    assert sc.arrays()["revealed"][0] and sc.arrays()["recon"][0].tolist() == [9, 9, 9, 2]
    assert sc.step(3, START_NOOP, u=0.5)[0].tolist() == [0.0, 0.0]
    assert sc.step(3, START_NOOP, u=0.5)[0].tolist() == [0.0, 0.0]
    reward, moved = sc.step(3, START_NOOP)
    assert reward.tolist() == [3.0, -25.0] and moved and sc.arrays()["hacked"]


def test_dense_v3_informed_server_success_2():
    """Recon node 1, one failure on its weakest type, then success: G = 2, (2.0, 0)."""
    defense = [[9, 1, 9, 9], [9, 9, 1, 9], [9, 9, 9, 9], [0, 0, 0, 0]]
    sc = Scenario(19, v_state(19, defense=defense), initial=V19_INITIAL)
    assert sc.step(1 * 5 + 4, START_NOOP, u=0.5)[0].tolist() == [0.0, 0.0]
    assert sc.step(1 * 5 + 2, START_NOOP, u=0.5)[0].tolist() == [0.0, 0.0]
    reward, moved = sc.step(1 * 5 + 2, START_NOOP)
    assert reward.tolist() == [2.0, 0.0] and moved


def test_dense_v3_row_id_bug_server_success_minus_1():
    """Informed success into node 2 scores -1: the min-set is taken over nodes 0 and 1 (row-local
    indices used as node ids), whose minimum 1 is below node 2's weakest defense 2 (Q9)."""
    defense = [[9, 1, 9, 9], [9, 9, 9, 9], [9, 9, 2, 9], [0, 0, 0, 0]]
    sc = Scenario(19, v_state(19, defense=defense), initial=V19_INITIAL)
    sc.step(2 * 5 + 4, START_NOOP, u=0.5)
    sc.step(2 * 5 + 2, START_NOOP, u=0.5)
    sc.step(2 * 5 + 2, START_NOOP, u=0.5)
    reward, moved = sc.step(2 * 5 + 2, START_NOOP)
    assert reward.tolist() == [-1.0, 0.0] and moved and sc.arrays()["position"] == 2


@pytest.mark.parametrize(
    "node1_defense, recon_first, attacker_reward",
    [
        ([9, 1, 9, 9], True, -1.0),  # row-id bug: node 1's 1 < the data node's 2 → empty min-set
        ([9, 9, 9, 9], True, 0.0),  # informed: type 3 is in the data node's min-set over nodes 0, 1
        ([9, 9, 9, 9], False, -1.0),  # not revealed → -1
    ],
)
def test_dense_v3_detection(node1_defense, recon_first, attacker_reward):
    """Detected attack on the data node from node 1: (0 if informed else -1, ds - ref) = (·, 2 - 1)."""
    defense = [[9, 9, 9, 2], node1_defense, [9, 9, 9, 9], [0, 0, 0, 0]]
    sc = Scenario(19, v_state(19, position=1, defense=defense), initial=V19_INITIAL)
    if recon_first:
        sc.step(0 * 5 + 4, START_NOOP, u=0.5)
    reward, _ = sc.step(3, START_NOOP, u=0.05)  # det 1 → p = 0.1
    assert reward.tolist() == [attacker_reward, 1.0] and sc.arrays()["detected"]


def test_dense_v3_detected_reconnaissance_is_minus_1():
    defense = [[9, 9, 9, 2], [9, 9, 9, 9], [9, 9, 9, 9], [0, 0, 0, 0]]
    sc = Scenario(19, v_state(19, position=1, defense=defense), initial=V19_INITIAL)
    sc.step(0 * 5 + 4, START_NOOP, u=0.5)
    reward, _ = sc.step(0 * 5 + 4, START_NOOP, u=0.05)  # recon again, now on a revealed node
    assert reward.tolist() == [-1.0, 1.0] and sc.arrays()["detected"] and sc.arrays()["failed"][0, 0] == 2


@pytest.mark.parametrize("version", [19, 20, 21])
def test_dense_v3_reference_score_is_one(version):
    """Q23: the reference score comes from the construction-time state and is 1 for v19-21."""
    cfg = two_agent(version)
    defense, _ = APPENDIX_B[version]
    assert float(defense_score(cfg.network_arrays(), np.asarray(defense, np.int8))) == 1.0
    if reference_available():
        game = ReferenceGame(version, Mode.TWO_AGENT, seed=12345)
        init = game.game_config.initial_state
        assert np.array_equal(init.defense_values, defense), "Appendix B layout differs from the reference"
        util = reference_util()
        assert util.defense_score(init, game.network_config, game.game_config) == 1
        assert float(game.params().reference_defense_score) == 1.0


def test_defense_score_fuzz_against_reference():
    """`defense_score` on random defense matrices (maxed-out rows included, +inf when all are at M)."""
    util = reference_util()
    rng = np.random.RandomState(5)
    for version in (0, 3, 4, 11, 15, 19):
        game = ReferenceGame(version, Mode.TWO_AGENT, seed=0)
        cfg, m = game.config, game.game_config.max_value
        fn = jax.jit(lambda d, c=cfg: defense_score(c.fixed_arrays.replace(max_value=np.int32(m)), d))
        for trial in range(40):
            low = m if trial % 4 == 0 else rng.randint(0, m + 1)
            de = rng.randint(low, m + 1, size=(cfg.num_nodes, cfg.attack_types))
            if trial % 8 == 1:
                de[-1] = rng.randint(0, m + 1, size=cfg.attack_types)  # the start row never counts
            game.env.state.defense_values = de.astype(np.int32)
            expected = util.defense_score(game.env.state, game.network_config, game.game_config)
            got = float(fn(de.astype(np.int8)))
            assert got == float(expected), (version, de.tolist(), expected, got)


# ---------------------------------------------------------------------------------------------------
# Local views (§6.3, Q15)
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [14, 15, 18])
def test_local_views_from_every_position(version):
    cfg = two_agent(version)
    n, a = cfg.num_nodes, cfg.attack_types
    rng = np.random.RandomState(version)
    net = cfg.network
    game = None
    if reference_available():
        game = ReferenceGame(version, Mode.TWO_AGENT, seed=0)
        game.reset()
    for position in range(n):
        for _ in range(3):
            attack = rng.randint(0, cfg.spec.max_value + 1, size=(n, a))
            recon = rng.randint(0, 11, size=(n, a))
            revealed = rng.rand(n) < 0.5
            state = make_state(
                cfg,
                defense=np.ones((n, a)),
                detection=np.ones(n),
                position=position,
                attack=attack,
                recon=recon,
                revealed=revealed,
            )
            att, _ = jax_observe(cfg, state)
            width = 2 * a + 2 if cfg.reconnaissance else a + 1
            assert att.shape == (2, width)
            assert (att[1] == -1).all(), "slot 1 (the cell below) is never filled"
            # Slot 0: the node in the cell directly above, when there is one and it is linked (§6.3).
            above = -1
            r, c = net.node_row[position] - 1, net.node_col[position]
            if r >= 0 and net.cell_node[r, c] >= 0 and net.adjacency[position, net.cell_node[r, c]]:
                above = int(net.cell_node[r, c])
            if above < 0:
                assert (att[0] == -1).all()
            else:
                expected = list(attack[above]) + [above]
                if cfg.reconnaissance:
                    expected += list(recon[above]) + [int(revealed[above])]
                assert att[0].tolist() == expected
            if game is not None:
                game.load(state)
                ref_att, _ = game.observations()
                assert ref_att.dtype == np.int64
                assert_observation_equal(ref_att, att, f"v{version} local view from node {position}")
    if version == 15:  # the column-0 server sees nothing; the start sees only the column-1 server
        state = make_state(cfg, defense=np.ones((n, a)), detection=np.ones(n), position=1, attack=np.ones((n, a)))
        assert (jax_observe(cfg, state)[0] == -1).all()
        state = make_state(cfg, defense=np.ones((n, a)), detection=np.ones(n), position=3)
        assert jax_observe(cfg, state)[0][0, a] == 2


# ---------------------------------------------------------------------------------------------------
# Observations and legality on fuzzed states (§13.1 item 2), every version
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", range(22))
def test_observations_and_legality_fuzz(version):
    game = ReferenceGame(version, Mode.TWO_AGENT, seed=version)
    game.reset()
    cfg = game.config
    n, a, m = cfg.num_nodes, cfg.attack_types, cfg.spec.max_value
    util = reference_util()
    rng = np.random.RandomState(100 + version)
    params = base_params(cfg)
    mask_fn = jax.jit(lambda s: attack_mask(cfg.shape, cfg.network_arrays(params), s.position, s.attack))
    for trial in range(12):
        position = int(rng.randint(0, n))
        state = make_state(
            cfg,
            attack=rng.randint(0, m + 1, size=(n, a)) if trial % 3 else np.full((n, a), m),
            defense=rng.randint(0, m + 1, size=(n, a)),
            detection=rng.randint(0, m + 1, size=n),
            recon=rng.randint(0, 11, size=(n, a)),
            revealed=rng.rand(n) < 0.5,
            position=position,
        )
        game.load(state)
        ref_att, ref_def = game.observations()
        att, de = jax_observe(cfg, state)
        where = f"v{version} trial {trial} position {position}"
        assert_observation_equal(ref_att, att, "attacker observation", where)
        assert_observation_equal(ref_def, de, "defender observation", where)
        s = game.env.state
        legal = [util.is_attack_id_legal(i, game.game_config, s.attacker_pos, s, []) for i in range(cfg.num_attack_ids)]
        assert np.asarray(mask_fn(state)).tolist() == legal, where


# ---------------------------------------------------------------------------------------------------
# Bots
# ---------------------------------------------------------------------------------------------------
def test_defend_minimal_v3_all_equal_support():
    """All seven non-start nodes tied: uniform over nodes 1-6 (type 0), the data node never chosen (Q12)."""
    cfg = GameConfig.create(3, Mode.MINIMAL_DEFENSE)
    state = make_state(cfg, defense=[[2] * 10] * 7 + [[0] * 10], detection=[2] * 7 + [0])
    choices = jax_bot_choices(cfg, "defend_minimal", state, base_params(cfg), num=600)
    counts = collections.Counter(choices.tolist())
    expected = {n * 11 for n in range(1, 7)}
    assert set(counts) == expected
    assert min(counts.values()) > 60  # 100 expected each
    if reference_available():
        game = ReferenceGame(3, Mode.MINIMAL_DEFENSE, seed=0)
        game.reset()
        game.load(state)
        np.random.seed(3)
        ref = collections.Counter(int(game.defender_bot.original(game.env.state)) for _ in range(300))
        assert set(ref) == expected


def test_defend_minimal_two_way_tie_keeps_first():
    cfg = GameConfig.create(3, Mode.MINIMAL_DEFENSE)
    defense = np.full((8, 10), 5)
    defense[2, 3] = 1
    defense[5, 7] = 1
    defense[7] = 0
    state = make_state(cfg, defense=defense, detection=[5] * 7 + [0])
    assert set(jax_bot_choices(cfg, "defend_minimal", state, base_params(cfg)).tolist()) == {2 * 11 + 3}
    defense[0, 0] = 1  # a third tie: uniform among the *later* nodes 2 and 5
    state = make_state(cfg, defense=defense, detection=[5] * 7 + [0])
    choices = set(jax_bot_choices(cfg, "defend_minimal", state, base_params(cfg), num=64).tolist())
    assert choices == {2 * 11 + 3, 5 * 11 + 7}


@pytest.mark.parametrize("version", [0, 1, 3, 4, 5, 13, 15, 18, 19, 21])
def test_bots_on_fuzzed_states(version):
    """DefendMinimal and AttackMaximal on random states (ties and maxed values frequent): the reference's
    choice equals idsjax's whenever it is deterministic, and lies in idsjax's support otherwise."""
    cfg = GameConfig.create(version, Mode.TWO_AGENT)
    n, a, m = cfg.num_nodes, cfg.attack_types, cfg.spec.max_value
    rng = np.random.RandomState(7 + version)
    maximal = build_reference(version, Mode.MAXIMAL_ATTACK, seed=1)
    minimal = build_reference(version, Mode.MINIMAL_DEFENSE, seed=1)
    for env in (maximal, minimal):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.reset()
    holder = ReferenceGame.__new__(ReferenceGame)
    holder.config, holder.env = cfg, maximal
    legality = Legality(holder)
    params = base_params(cfg)
    for trial in range(25):
        low = rng.randint(0, m + 1)
        # Attack values mostly below M (a maxed arg-max type disqualifies its node), a few at M.
        attack = np.where(rng.rand(n, a) < 0.03, m, rng.randint(0, max(m - 1, 1), size=(n, a)))
        state = make_state(
            cfg,
            attack=attack if trial % 5 else np.full((n, a), m),
            defense=rng.randint(low, min(low + 2, m) + 1, size=(n, a)),
            detection=rng.randint(low, min(low + 2, m) + 1, size=n),
            recon=rng.randint(0, 11, size=(n, a)),
            revealed=rng.rand(n) < 0.5,
            position=int(rng.randint(1, n)),
        )
        arrays = jax_state_arrays(state)
        for env, name in ((maximal, "attack_maximal"), (minimal, "defend_minimal")):
            load_into_reference(cfg, env, state)
            agent = env.idsgame_config.attacker_agent if name == "attack_maximal" else env.idsgame_config.defender_agent
            ref_choice = int(agent.action(env.state))
            if name == "attack_maximal":
                expected, support = attack_maximal_support(cfg, arrays, legality.legal_ids(env.state))
            else:
                expected, support = defend_minimal_support(cfg, arrays)
            ours = set(jax_bot_choices(cfg, name, state, params).tolist())
            where = f"v{version} trial {trial} {name}"
            assert ref_choice in support, where
            if expected is not None:
                assert ref_choice == expected and ours == {expected}, (where, ref_choice, ours)
            else:
                assert ours <= support, (where, ours, support)


@pytest.mark.parametrize("version", [18, 19, 20, 21])
def test_reference_random_attack_crashes_with_reconnaissance_q10(version):
    """The reference's random attacker raises NameError with reconnaissance (Q10), which is why the
    lockstep test drives `random_attack-v18…v21` with the two-agent class; idsjax implements the evident
    intent: uniform over the id-legal global ids."""
    game = ReferenceGame(version, Mode.RANDOM_ATTACK, seed=0)
    game.reset()
    with pytest.raises(NameError):
        game.step(0, 0)
    cfg = game.config
    state = game.jax_state()
    legal = set(Legality(game).legal_ids(game.env.state))
    choices = set(jax_bot_choices(cfg, "random_attack", state, base_params(cfg), num=256).tolist())
    assert choices == legal


# ---------------------------------------------------------------------------------------------------
# Static structure (§13.1 item 1)
# ---------------------------------------------------------------------------------------------------
REWARD_FLAGS = {
    RewardFamily.SPARSE: (False, False, False),
    RewardFamily.DENSE: (True, False, False),  # or dense_rewards_v2 alone (v16-18), which behaves the same
    RewardFamily.DENSE_V3: (False, False, True),
}


@pytest.mark.parametrize("env_id", registered_envs())
def test_static_structure_and_version_numbers(env_id):
    version, mode = parse_env_id(env_id)
    env = build_reference(version, mode, seed=0)
    cfg = GameConfig.create(version, mode)
    gc = env.idsgame_config.game_config
    ic = env.idsgame_config
    nc = gc.network_config
    net = cfg.network
    # Grid, nodes, adjacency, max_neighbors.
    assert (net.rows, net.cols) == (nc.num_rows, nc.num_cols)
    assert cfg.num_nodes == gc.num_nodes == len(nc.node_list)
    for node in range(cfg.num_nodes):
        assert nc.get_node_pos(node) == (net.node_row[node], net.node_col[node])
        assert int(nc.node_list[node]) == int(net.node_type[node])
    assert net.node_type[0] == DATA and net.node_type[-1] == START
    assert ((net.node_type == SERVER).sum()) == gc.num_layers * gc.num_servers_per_layer
    assert np.array_equal(net.grid_adjacency, nc.adjacency_matrix)
    grid = net.node_row * net.cols + net.node_col
    assert np.array_equal(net.adjacency, np.asarray(nc.adjacency_matrix)[np.ix_(grid, grid)] == 1)
    assert cfg.max_neighbors == nc.max_neighbors
    # Action counts and observation shapes.
    assert cfg.num_attack_actions == env.num_attack_actions == gc.num_attack_actions
    assert cfg.num_defense_actions == env.num_defense_actions
    assert cfg.num_attack_ids == gc.num_nodes * (gc.num_attack_types + (1 if gc.reconnaissance_actions else 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_att, ref_def = env.reset()
    assert cfg.attacker_observation_shape == ref_att.shape
    assert cfg.defender_observation_shape == ref_def.shape
    # The version's numbers and flags.
    spec = cfg.spec
    assert (spec.attack_types, spec.max_value) == (gc.num_attack_types, gc.max_value)
    assert (spec.defense_value, spec.attack_value, spec.detection_value) == (gc.defense_val, gc.attack_val, gc.det_val)
    assert spec.vulnerability_value == gc.vulnerabilitiy_val
    assert spec.vulnerabilities_per_node == gc.num_vulnerabilities_per_node
    assert spec.vulnerable_servers_per_layer == gc.num_vulnerabilities_per_layer
    assert (spec.min_attack, spec.min_defense, spec.min_detection) == (
        gc.min_random_a_val,
        gc.min_random_d_val,
        gc.min_random_det_val,
    )
    assert spec.max_vulnerability_value == gc.max_random_v_val
    assert spec.connected_layers == nc.connected_layers
    assert spec.fully_observed == bool(nc.fully_observed)
    assert spec.local_view == bool(ic.local_view_observations)
    assert spec.reconnaissance == bool(gc.reconnaissance_actions) == bool(ic.reconnaissance_actions)
    if spec.reconnaissance:
        assert ic.reconnaissance_bool_features
    assert spec.randomize_env == bool(ic.randomize_env)
    assert spec.random_start == bool(ic.randomize_starting_position)
    assert spec.randomize_visibility == bool(ic.randomize_env and ic.randomize_visibility and ic.visibility_p > 0)
    if spec.randomize_visibility:
        assert spec.visibility_p == ic.visibility_p
    assert ic.reconnaissance_detection_factor == 1
    assert not ic.reconnaissance_reward and not ic.extra_reconnaissance_reward
    flags = (
        bool(gc.dense_rewards),
        bool(getattr(gc, "dense_rewards_v2", False)),
        bool(getattr(gc, "dense_rewards_v3", False)),
    )
    if spec.reward == RewardFamily.DENSE:
        assert flags in ((True, False, False), (False, True, False))
    else:
        assert flags == REWARD_FLAGS[spec.reward]
    # The bots of the mode.
    attacker = type(ic.attacker_agent).__name__ if ic.attacker_agent is not None else None
    defender = type(ic.defender_agent).__name__ if ic.defender_agent is not None else None
    assert (
        attacker
        == {None: None, "random_attack": "RandomAttackBotAgent", "attack_maximal": "AttackMaximalValueBotAgent"}[
            mode.attacker_bot
        ]
    )
    assert (
        defender
        == {None: None, "random_defense": "RandomDefenseBotAgent", "defend_minimal": "DefendMinimalValueBotAgent"}[
            mode.defender_bot
        ]
    )


@pytest.mark.parametrize("env_id", ["idsgame-maximal_attack-v16", "idsgame-v19"])
def test_make_params_numbers(env_id):
    """`idsjax.make` gives the numbers the lockstep test's `base_params` assumes, and a construction-time
    layout of the right kind (spec §3.2)."""
    env, params = make(env_id, seed=3)
    cfg = env.config
    assert int(params.max_steps_in_episode) == horizon_for_reference() == 102
    assert int(params.max_value) == cfg.spec.max_value
    assert float(params.detection_factor) == 1.0
    de = np.asarray(params.initial_defense)
    assert de.shape == (cfg.num_nodes, cfg.attack_types)
    assert (de[-1] == 0).all() and int(np.asarray(params.initial_detection)[-1]) == 0
    assert float(params.reference_defense_score) == float(
        defense_score(cfg.network_arrays(params), params.initial_defense)
    )


# ---------------------------------------------------------------------------------------------------
# The harness itself
# ---------------------------------------------------------------------------------------------------
def test_float32_uniform_agrees_with_float64_thresholds():
    """Draws within an ulp of every threshold k/10 keep the reference's float64 outcome in float32."""
    from reference_oracle import _float32_thresholds

    thresholds32 = _float32_thresholds(1.0)
    probes = [0.0, 0.5, np.nextafter(1.0, 0.0)]
    for k in range(1, 10):
        t = k / 10
        probes += [
            t,
            np.nextafter(t, 0.0),
            np.nextafter(t, 1.0),
            float(np.float32(t)),
            float(np.nextafter(np.float32(t), np.float32(0.0))),
        ]
    for u in probes:
        u32 = float32_uniform(u)
        assert 0.0 <= u32 < 1.0 and u32.dtype == np.float32
        expected = [u < d / 10 for d in range(len(thresholds32))]
        assert (u32 < thresholds32).tolist() == expected, u


@pytest.mark.parametrize("version", [0, 8, 11, 13, 19, 20, 21])
def test_appendix_b_layouts_reproduce(version):
    """Constructing the reference class after `np.random.seed(12345)` gives the Appendix B layouts used
    by the scenarios above."""
    game = ReferenceGame(version, Mode.TWO_AGENT, seed=12345)
    defense, detection = APPENDIX_B[version]
    init = game.game_config.initial_state
    assert np.array_equal(init.defense_values, defense) and np.array_equal(init.defense_det, detection)


@pytest.mark.parametrize("version", [v for v in range(22) if not two_agent(v).spec.randomize_env])
def test_reset_restores_the_construction_time_state(version):
    """Non-randomised versions: `initial_state` with the reference instance's construction-time layout is
    exactly the reference's state after `reset()` (start node, nothing revealed, fresh histories)."""
    from idsjax.env import IdsGameEnv

    game = ReferenceGame(version, Mode.TWO_AGENT, seed=version + 1)
    game.reset()
    game.step(-1, 0)  # dirty the state, then reset again
    game.reset()
    cfg = game.config
    state = jax.jit(IdsGameEnv(cfg).initial_state)(jax.random.PRNGKey(version), game.params())
    assert_states_equal(cfg, game.state_arrays(), jax_state_arrays(state), "after reset")
    ref_att, ref_def = game.observations()
    att, de = jax_observe(cfg, state)
    assert_observation_equal(ref_att, att, "attacker observation", "after reset")
    assert_observation_equal(ref_def, de, "defender observation", "after reset")


def test_v18_local_to_global_attack_ids():
    """v18's advertised local ids convert to global ids through the local view (§4.1), as the
    reference's bots convert them; -1 where the slot is empty."""
    from idsjax.actions import local_to_global_attack

    game = ReferenceGame(18, Mode.MAXIMAL_ATTACK, seed=0)
    game.reset()
    cfg = game.config
    agent = game.attacker_bot.agent
    convert = jax.jit(lambda p, a: local_to_global_attack(cfg.shape, cfg.fixed_arrays, p, a))
    for position in range(cfg.num_nodes):
        state = make_state(cfg, defense=np.ones((3, 4)), detection=np.ones(3), position=position)
        game.load(state)
        obs, _ = game.observations()
        for local in range(cfg.num_attack_actions):
            expected = agent.convert_local_attacker_action_to_global(local, obs)
            assert int(convert(position, local)) == expected, (position, local)
        assert int(convert(position, cfg.num_attack_actions)) == -1 and int(convert(position, -1)) == -1
