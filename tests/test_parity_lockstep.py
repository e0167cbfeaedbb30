"""Lockstep parity with the reference, for all 110 ids (spec §13.1, item 3).

For every id the reference (gym-idsgame 1.0.13) is built, reset, and its state copied into an idsjax
`EnvState`; then both are stepped with the same joint actions (for single-agent ids: the action the
reference's bot actually chose) and the same detection uniforms (recorded from the reference's
`np.random.rand`). After every call the complete state, both observations, the reward pair (reference
cast to float32), `done` and `info["moved"]` must be identical; idsjax's other info flags must match the
reference's events (`attack_legal`: a legal attack was logged; `hacked`/`detected`: this call ended the
episode; `timed_out`: the step-limit call).

Three action policies:
- "legal": mostly id-legal attacks (10% arbitrary ids, `-1` included), random defenses (start node
  included, spec Q2); stops at the end of the episode.
- "illegal": mostly illegal or `-1` attacks, run for 104 calls whatever happens (the game keeps
  simulating after `done`, spec Q29); calls 102-104 must be the step-limit penalty (-100, -100) with
  `game_step` stuck at 101 (Q4).
- "recon" (v18-v21): mostly reconnaissance among the legal actions.

Bots: whenever the reference's bot choice is deterministic (DefendMinimal without a >=3-way tie,
AttackMaximal with a non-fallback target), the JAX bot must choose the same id on the same pre-step
state under every key; otherwise both choices must lie in the reference's support.

`random_attack-v18…v21` crash in the reference on their first step (Q10): those ids are driven through the
two-agent reference class with explicit attacks.
"""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np
import pytest

from idsjax import registered_envs
from idsjax.versions import Mode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the oracle lives next to this file
from reference_oracle import (  # noqa: E402
    Legality,
    ReferenceGame,
    assert_observation_equal,
    assert_states_equal,
    attack_maximal_support,
    defend_minimal_support,
    float32_uniform,
    jax_bot_choices,
    jax_observe,
    jax_state_arrays,
    jax_step_with_info,
    parse_env_id,
)

CONSTRUCTION_SEEDS = (0, 7)
EPISODES = {"legal": 3, "illegal": 1, "recon": 2}
STEP_LIMIT_CALLS = 104  # 101 transitions, then three step-limit penalties
MAX_EPISODE_CALLS = 102  # the 102nd call of an unfinished episode is the penalty


def _legal_attack_ids(game: ReferenceGame) -> list[int]:
    """The reference's id-level legality over all global attack ids."""
    if not hasattr(game, "legality"):
        game.legality = Legality(game)
    return game.legality.legal_ids(game.env.state)


def _choose_attack(rng, game: ReferenceGame, legal: list[int], policy: str) -> int:
    cfg = game.config
    arbitrary = int(rng.randint(-1, cfg.num_attack_ids))
    if policy == "illegal":
        return int(rng.choice(legal)) if legal and rng.rand() < 0.05 else arbitrary_illegal(rng, cfg, legal)
    if not legal or rng.rand() < 0.1:
        return arbitrary
    if policy == "recon":
        scouts = [a for a in legal if a % cfg.attack_id_width == cfg.attack_types]
        if scouts and rng.rand() < 0.6:
            return int(rng.choice(scouts))
    return int(rng.choice(legal))


def arbitrary_illegal(rng, cfg, legal) -> int:
    illegal = sorted(set(range(-1, cfg.num_attack_ids)) - set(legal))
    return int(rng.choice(illegal))


def _choose_joint(rng, game: ReferenceGame, legal: list[int], policy: str) -> tuple:
    """The pair handed to the reference's `step` for its class's mode."""
    cfg = game.config
    defense = int(rng.randint(0, cfg.num_defense_actions))
    learner = game.reference_mode.learner
    if learner == "attacker":
        return _choose_attack(rng, game, legal, policy), 0  # the defense part is ignored (bot decides)
    if learner == "defender":
        silence = {"legal": 0.1, "illegal": 0.95, "recon": 0.1}[policy]
        return (-1 if rng.rand() < silence else 0), defense  # -1 silences the attacker bot (§4.1)
    return _choose_attack(rng, game, legal, policy), defense


def _check_bot(game, params, pre_state, pre_arrays, legal, name, reference_choice, where):
    cfg = game.config
    if name == "defend_minimal":
        expected, support = defend_minimal_support(cfg, pre_arrays)
    elif name == "attack_maximal":
        expected, support = attack_maximal_support(cfg, pre_arrays, legal)
    elif name == "random_defense":
        expected, support = None, set(range((cfg.num_nodes - 1) * (cfg.attack_types + 1)))
    else:  # random_attack without reconnaissance
        expected, support = None, set(legal) if legal else set(range(cfg.num_attack_ids))
    ours = jax_bot_choices(cfg, name, pre_state, params)
    assert reference_choice in support, f"reference {name} chose {reference_choice} outside {support} {where}"
    if expected is not None:
        assert reference_choice == expected, f"reference {name} {reference_choice} != expected {expected} {where}"
        assert set(ours.tolist()) == {expected}, (
            f"{name}: idsjax chose {set(ours.tolist())}, reference {expected} {where}"
        )
    else:
        assert set(ours.tolist()) <= support, f"{name}: idsjax chose {set(ours.tolist())} outside {support} {where}"


def _run_episode(game: ReferenceGame, params, rng, policy: str, label: str) -> int:
    cfg = game.config
    game.reset()
    state = game.jax_state()
    ref_att, ref_def = game.observations()
    att, de = jax_observe(cfg, state)
    assert_observation_equal(ref_att, att, "attacker observation", f"after reset {label}")
    assert_observation_equal(ref_def, de, "defender observation", f"after reset {label}")
    arrays = game.state_arrays()
    calls = STEP_LIMIT_CALLS if policy == "illegal" else MAX_EPISODE_CALLS
    for call in range(1, calls + 1):
        legal = _legal_attack_ids(game)
        attack_arg, defense_arg = _choose_joint(rng, game, legal, policy)
        pre_attacks = len(game.env.attacks)
        rec = game.step(attack_arg, defense_arg)
        where = f"[{label}, call {call}, step({attack_arg}, {defense_arg}) -> ({rec.attack_applied}, {rec.defense_applied})]"
        assert len(rec.uniforms) <= 1, f"more than one uniform drawn {where}"
        u = float32_uniform(rec.uniforms[0]) if rec.uniforms else np.float32(1.0)

        if rec.attacker_bot_action is not None and game.mode.attacker_bot and game.reference_mode == game.mode:
            _check_bot(game, params, state, arrays, legal, game.mode.attacker_bot, rec.attacker_bot_action, where)
        if rec.defender_bot_action is not None:
            _check_bot(game, params, state, arrays, legal, game.mode.defender_bot, rec.defender_bot_action, where)

        pre_arrays = arrays
        state, reward, info, att, de = jax_step_with_info(
            cfg, state, rec.attack_applied, rec.defense_applied, u, params
        )
        moved = info["moved"]
        arrays = game.state_arrays()
        assert_states_equal(cfg, arrays, jax_state_arrays(state), where)
        assert_observation_equal(rec.attacker_obs, att, "attacker observation", where)
        assert_observation_equal(rec.defender_obs, de, "defender observation", where)
        assert np.array_equal(rec.reward32, reward), f"reward reference={rec.reward} idsjax={reward} {where}"
        assert rec.info["moved"] == moved, f"info moved reference={rec.info['moved']} idsjax={moved} {where}"
        timed_out = bool(np.asarray(state.timed_out))
        assert rec.done == (bool(np.asarray(state.done)) or timed_out), f"done {rec.done} {where}"
        assert timed_out == (call > 101), f"timed_out={timed_out} {where}"
        # The other info flags: this call's events (the reference logs every legal attack in `attacks`).
        assert info["timed_out"] == timed_out, where
        assert info["attack_legal"] == (len(game.env.attacks) > pre_attacks), f"attack_legal {where}"
        if not pre_arrays["done"]:
            assert info["hacked"] == bool(arrays["hacked"]), f"info hacked {where}"
            assert info["detected"] == bool(arrays["detected"]), f"info detected {where}"
        if call > 101:
            assert rec.reward32.tolist() == [-100.0, -100.0] and rec.done, where
            assert game.env.state.game_step == 101 and int(np.asarray(state.time)) == 101, where
        if policy != "illegal" and rec.done:
            break
    return call


def _lockstep(env_id: str, seeds, episodes: dict, illegal_seeds: int) -> None:
    version, mode = parse_env_id(env_id)
    # random_attack-v18…v21 raise NameError in the reference's bot (Q10): drive the two-agent class.
    reference_mode = Mode.TWO_AGENT if (mode is Mode.RANDOM_ATTACK and version >= 18) else None
    rng = np.random.RandomState(zlib.crc32(env_id.encode()) + len(seeds))
    np.random.seed(zlib.crc32(env_id.encode()) % 2**31)
    policies = ["legal", "illegal"] + (["recon"] if version >= 18 else [])
    lengths = []
    outcomes = set()
    for index, seed in enumerate(seeds):
        game = ReferenceGame(version, mode, seed=seed, reference_mode=reference_mode)
        params = game.params()
        for policy in policies:
            if policy == "illegal" and index >= illegal_seeds:
                continue  # the step-limit policy is the slowest: only for the first seeds
            for episode in range(episodes[policy]):
                label = f"{env_id} seed {seed} {policy} episode {episode}"
                lengths.append(_run_episode(game, params, rng, policy, label))
                s = game.env.state
                outcomes.add("hacked" if s.hacked else "detected" if s.detected else "other")
    # The runs must have exercised real transitions, not only resets.
    assert sum(lengths) >= STEP_LIMIT_CALLS + len(lengths) - 1
    assert outcomes & {"hacked", "detected"}, f"no episode of {env_id} ended by a hack or a detection"


@pytest.mark.parametrize("env_id", registered_envs())
def test_lockstep_parity(env_id):
    _lockstep(env_id, CONSTRUCTION_SEEDS, EPISODES, illegal_seeds=1)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", registered_envs())
def test_lockstep_parity_extended(env_id):
    """The spec's own verification budget (§Appendix C): 5 construction seeds, 6 episodes each."""
    _lockstep(env_id, (11, 12, 13, 14, 15), {"legal": 4, "illegal": 1, "recon": 2}, illegal_seeds=5)
