"""Lockstep parity of `IdsGameEnv.step` itself with the reference, auto-reset included.

`test_parity_lockstep` drives the transition with the reference's own draws. Here the learner's
environment is driven the way users drive it, `env.step(key, state, action, params)`, across many
episodes, and the reference follows it:

- the detection uniform is the one `env.step` draws from its key (injected into the reference's
  `np.random.rand`, rounded so every detection comparison agrees);
- the opponent's move is the JAX bot's choice (`info["attack_action"]` / `info["defense_action"]`):
  it must equal the reference bot's own choice on the same state wherever that choice is
  deterministic, and lie in the reference bot's support otherwise; the reference then applies the
  JAX bot's move, so both games stay on one trajectory;
- when an episode ends, `env.step` auto-resets: the reference is reset too, and the reset state must
  equal the JAX one for ids whose reset draws nothing; for the others (fresh layouts, random
  starts) the JAX reset state is loaded into the reference, and only what follows is compared.

After every call: the learner's observation (the reset one after an auto-reset), the pre-reset
observation in `info["final_observation"]`, the learner's reward, `terminated`, `truncated`, both
reward entries of `info`, the complete state, and the legal-action mask of the returned state.
"""

from __future__ import annotations

import os
import sys
import zlib

import jax
import numpy as np
import pytest

import idsjax
from idsjax.versions import Mode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the oracle lives next to this file
from reference_oracle import (  # noqa: E402
    Legality,
    ReferenceGame,
    _float32_thresholds,
    _float64_thresholds,
    assert_observation_equal,
    assert_states_equal,
    attack_maximal_support,
    defend_minimal_support,
    injected_rand,
    jax_state_arrays,
    parse_env_id,
)

# Every mode, fixed and randomised layouts, sparse/dense/dense-v3 rewards, local views, reconnaissance,
# connected layers, the tiny v11-v13 games, and the crashing random_attack-v19 (driven by explicit moves).
IDS = (
    "idsgame-random_defense-v0",
    "idsgame-minimal_defense-v3",
    "idsgame-v5",
    "idsgame-maximal_attack-v7",
    "idsgame-random_attack-v9",
    "idsgame-v11",
    "idsgame-random_defense-v12",
    "idsgame-minimal_defense-v13",
    "idsgame-minimal_defense-v14",
    "idsgame-maximal_attack-v16",
    "idsgame-random_defense-v18",
    "idsgame-random_attack-v19",
    "idsgame-maximal_attack-v21",
)
CALLS = 260  # env.step calls per id: several episodes, at least one of them to the step limit


def reference_uniform(u32: np.float32, factor: float = 1.0) -> float:
    """A float64 draw for the reference that falls on the same side of every detection threshold as
    the JAX transition's float32 draw `u32` (the inverse of the oracle's `float32_uniform`)."""
    want = np.float32(u32) < _float32_thresholds(float(factor))
    thresholds = _float64_thresholds(factor)
    u = float(u32)
    for _ in range(64):
        wrong = np.flatnonzero((u < thresholds) != want)
        if wrong.size == 0:
            assert 0.0 <= u < 1.0, u
            return u
        u = float(np.nextafter(u, np.inf if (u < thresholds)[wrong[0]] else -np.inf))
    raise AssertionError(f"no float64 draw reproduces the JAX comparisons for u32={u32!r}")


def _bot_support(game: ReferenceGame, name: str, arrays: dict, legal: list[int]) -> tuple[int | None, set]:
    cfg = game.config
    if name == "defend_minimal":
        return defend_minimal_support(cfg, arrays)
    if name == "attack_maximal":
        return attack_maximal_support(cfg, arrays, legal)
    if name == "random_defense":
        return None, set(range((cfg.num_nodes - 1) * (cfg.attack_types + 1)))
    return None, set(legal) if legal else set(range(cfg.num_attack_ids))  # random_attack


class _ForcedBot:
    """Makes the reference bot apply the JAX bot's move, keeping the reference bot's own choice."""

    def __init__(self, recording_bot):
        self.own = recording_bot.original
        recording_bot.original = self
        self.move: int | None = None
        self.own_choice: int | None = None

    def __call__(self, game_state):
        self.own_choice = int(self.own(game_state))
        assert self.move is not None, "the reference asked its bot without a JAX move to apply"
        return self.move


def _learner_action(rng, env, game: ReferenceGame, legal: list[int], episode_kind: str):
    """The learner's move (two-agent ids: both moves): mostly legal attacks, or mostly illegal ones
    in the episodes meant to reach the step limit; random defenses."""
    cfg = env.config
    if episode_kind == "illegal" or not legal or rng.rand() < 0.1:
        attack = int(rng.randint(-1, cfg.num_attack_ids))
        if episode_kind == "illegal" and legal and attack in legal:
            attack = -1
    else:
        attack = int(rng.choice(legal))
    defense = int(rng.randint(0, cfg.num_defense_actions))
    if env.learner == "attacker":
        return attack
    if env.learner == "defender":
        return defense
    return {"attacker": np.int32(attack), "defender": np.int32(defense)}


@pytest.mark.parametrize("env_id", IDS)
def test_env_step_lockstep(env_id):
    version, mode = parse_env_id(env_id)
    crashing_bot = mode is Mode.RANDOM_ATTACK and version >= 18  # spec Q10: drive the two-agent class
    game = ReferenceGame(version, mode, seed=3, reference_mode=Mode.TWO_AGENT if crashing_bot else None)
    env = idsjax.make(env_id)[0]
    params = game.params(env.default_params)
    cfg = env.config
    learner = env.learner
    forced = None
    if learner == "attacker":
        forced = _ForcedBot(game.defender_bot)
    elif learner == "defender" and not crashing_bot:
        forced = _ForcedBot(game.attacker_bot)

    step = jax.jit(env.step)
    split, draw = jax.jit(env.split_reset_key), jax.jit(env.draw_step)
    mask_of = jax.jit(env.legal_action_mask)
    rng = np.random.RandomState(zlib.crc32(env_id.encode()))
    np.random.seed(zlib.crc32(env_id.encode()) % 2**31)
    key = jax.random.PRNGKey(zlib.crc32(env_id.encode()) % 2**31)

    game.reset()
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    if env.reset_is_random:
        game.load(state)
    assert_states_equal(cfg, game.state_arrays(), jax_state_arrays(state), "after the first reset")
    legality = Legality(game)
    kinds = ("illegal", "legal", "legal")
    episode, calls_in_episode, outcomes = 0, 0, set()
    for call in range(CALLS):
        kind = kinds[episode % len(kinds)]
        where = f"[{env_id}, call {call}, episode {episode} ({kind}), episode call {calls_in_episode + 1}]"
        arrays = game.state_arrays()
        legal = legality.legal_ids(game.env.state)
        action = _learner_action(rng, env, game, legal, kind)
        key, k_call = jax.random.split(key)

        # What env.step will draw from k_call: the bot's move and the detection uniform.
        k_step, _ = split(k_call)
        attack_id, defense_id, u32 = (np.asarray(x) for x in draw(k_step, state, action, params))
        obs, state, reward, terminated, truncated, info = step(k_call, state, action, params)
        assert int(info["attack_action"]) == int(attack_id) and int(info["defense_action"]) == int(defense_id), where

        if learner == "attacker":
            ref_action = (int(action), 0)
        elif learner == "defender":
            ref_action = (int(attack_id), int(action)) if crashing_bot else (0, int(action))
        else:
            ref_action = (int(action["attacker"]), int(action["defender"]))
        if crashing_bot:  # the two-agent class plays the JAX random_attack bot's move
            assert int(attack_id) in (set(legal) if legal else set(range(cfg.num_attack_ids))), where
        if forced is not None:
            forced.move, forced.own_choice = (int(defense_id) if learner == "attacker" else int(attack_id)), None
        with injected_rand([reference_uniform(u32)]):
            rec = game.step(*ref_action)
        if forced is not None and forced.own_choice is not None:
            name = mode.defender_bot if learner == "attacker" else mode.attacker_bot
            expected, support = _bot_support(game, name, arrays, legal)
            assert forced.own_choice in support, f"reference {name} chose {forced.own_choice} outside {support} {where}"
            assert forced.move in support, f"idsjax {name} chose {forced.move} outside {support} {where}"
            if expected is not None:
                assert forced.own_choice == expected == forced.move, (
                    f"{name}: reference {forced.own_choice}, expected {expected}, idsjax {forced.move} {where}"
                )

        # The step itself, before any auto-reset.
        ref_terminated = rec.done and not bool(info["timed_out"])
        assert bool(terminated) == ref_terminated, f"terminated {bool(terminated)} reference done {rec.done} {where}"
        assert bool(truncated) == bool(info["timed_out"]), where
        assert rec.done == bool(terminated | truncated), f"done reference={rec.done} {where}"
        pair = rec.reward32
        assert np.float32(info["attacker_reward"]) == pair[0] and np.float32(info["defender_reward"]) == pair[1], (
            f"rewards reference={rec.reward} idsjax=({info['attacker_reward']}, {info['defender_reward']}) {where}"
        )
        if learner == "both":
            assert float(reward["attacker"]) == pair[0] and float(reward["defender"]) == pair[1], where
            final = info["final_observation"]
            assert_observation_equal(rec.attacker_obs, final["attacker"], "final attacker observation", where)
            assert_observation_equal(rec.defender_obs, final["defender"], "final defender observation", where)
        else:
            side = 0 if learner == "attacker" else 1
            assert np.float32(reward) == pair[side], f"reward reference={rec.reward} idsjax={reward} {where}"
            ref_obs = rec.attacker_obs if learner == "attacker" else rec.defender_obs
            assert_observation_equal(ref_obs, info["final_observation"], "final observation", where)

        calls_in_episode += 1
        # gymnax's contract: no episode has more transitions than the horizon, the step-limit one last.
        assert calls_in_episode <= params.max_steps_in_episode, f"episode longer than the horizon {where}"
        assert bool(truncated) == (calls_in_episode == params.max_steps_in_episode), where
        if rec.done:
            s = game.env.state
            outcomes.add("hacked" if s.hacked else "detected" if s.detected else "step limit")
            game.reset()
            if env.reset_is_random:
                game.load(state)
            episode, calls_in_episode = episode + 1, 0
        # The returned state (the auto-reset one when the episode ended) and its observation and mask.
        assert_states_equal(cfg, game.state_arrays(), jax_state_arrays(state), where)
        ref_att, ref_def = game.observations()
        if learner == "both":
            assert_observation_equal(ref_att, obs["attacker"], "attacker observation", where)
            assert_observation_equal(ref_def, obs["defender"], "defender observation", where)
        else:
            assert_observation_equal(ref_att if learner == "attacker" else ref_def, obs, "observation", where)
        if "legal_action_mask" in info:
            expected_mask = mask_of(state, params)
            for got, want in zip(jax.tree.leaves(info["legal_action_mask"]), jax.tree.leaves(expected_mask)):
                assert np.array_equal(np.asarray(got), np.asarray(want)), f"legal_action_mask {where}"
            if learner == "attacker":
                ids = np.flatnonzero(np.asarray(info["legal_action_mask"])).tolist()
                assert ids == legality.legal_ids(game.env.state), f"legal attack ids {where}"

    assert episode >= 3, f"{env_id}: only {episode} episodes ended in {CALLS} calls"
    if learner != "defender":  # an attacker bot never idles long enough to reach the step limit
        assert "step limit" in outcomes, f"{env_id}: no episode reached the step limit"
    assert outcomes & {"hacked", "detected"}, f"{env_id}: no episode ended by a hack or a detection"
