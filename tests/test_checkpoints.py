"""Checkpoints of every trainer and of both sides of a self-play run load as policies: in
`idsjax.play` and `idsjax.render` (through the `checkpoint:` policy loader), and as the exact
distribution the policy samples from. Mismatches of side, version and algorithm, and corrupt
checkpoints, are one sentence and exit code 2 on the command lines; a corrupt latest checkpoint
falls back to the previous intact one with a one-line warning."""

from __future__ import annotations

import io
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kit_runs import trained_run
from rich.console import Console

import idsjax
from baselines import checkpoints, dqn, ppo
from baselines.errors import UsageError
from idsjax import play, render
from idsjax.policies import PolicyLoadError, legal_ids, register_policy_loader, resolve_policy, side_observation

# kind -> (algorithm of the run, side its policy plays)
KINDS = {
    "ppo": ("ppo", "attacker"),
    "dqn": ("dqn", "defender"),
    "tabular_q": ("tabular_q", "attacker"),
    "reinforce": ("reinforce", "attacker"),
    "actor_critic": ("actor_critic", "attacker"),
    "selfplay-attacker": ("selfplay", "attacker"),
    "selfplay-defender": ("selfplay", "defender"),
}
OTHER = {"attacker": "defender", "defender": "attacker"}


@pytest.fixture(autouse=True, scope="module")
def checkpoint_loader():
    """The research kit's loader, registered as its entry point would (the kit may not be installed)."""
    register_policy_loader("checkpoint", checkpoints.load_checkpoint_policy)


def run_of(tmp_path_factory, kind: str):
    algo, side = KINDS[kind]
    out, _, _ = trained_run(tmp_path_factory, algo)
    config = json.loads((out / "config.json").read_text())
    return out, side, config["env"]


def two_agent_id(env_id: str) -> str:
    return f"idsgame-v{idsjax.make(env_id)[0].config.version}"


def _play(argv, keys):
    return play.run_script(argv, keys, width=160)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_checkpoint_kind_plays_and_renders(kind, tmp_path_factory, tmp_path):
    run, side, env_id = run_of(tmp_path_factory, kind)
    spec = f"checkpoint:{run}"
    # play: the human takes the other side of the two-agent id; every id is typed in turn, the
    # illegal ones are re-prompted, the legal ones played against the checkpoint's moves
    game_id = two_agent_id(env_id)
    env, _ = idsjax.make(game_id)
    human = OTHER[side]
    num_ids = env.config.num_attack_ids if human == "attacker" else env.config.num_defense_actions
    keys = "".join(f"{i}\n" for i in range(num_ids)) * 2 + "q\n"
    code, out = _play(["--env", game_id, "--side", human, "--opponent", spec], keys)
    assert code == 0, out
    assert f"you play the {human} against" in out
    assert f"{side}: " in out  # the checkpoint's move was played and reported
    # render: the checkpoint on its own side, on the id it was trained on
    gif = tmp_path / "game.gif"
    assert render.main(["--env", env_id, f"--{side}", spec, "--out", str(gif)]) == 0
    assert gif.stat().st_size > 0


def _states(env, params, count=3):
    """A few states of a game: the reset state and states after random joint moves."""
    both = idsjax.make(f"idsgame-v{env.config.version}")[0]
    states, state = [], env.initial_state(jax.random.PRNGKey(11), params)
    for t in range(count):
        states.append(state)
        k = jax.random.PRNGKey(100 + t)
        a = resolve_policy("random", "attacker", both, params)(k, None, state)
        d = resolve_policy("random", "defender", both, params)(k, None, state)
        from idsjax.policies import joint_step

        state, _, _ = joint_step(env, k, state, a, d, params)
    return states


@pytest.mark.parametrize("kind", list(KINDS))
def test_sampling_the_policy_matches_its_distribution(kind, tmp_path_factory):
    run, side, env_id = run_of(tmp_path_factory, kind)
    env, params = idsjax.make(env_id)
    policy = checkpoints.load_policy(str(run), env, params, side=side)
    probs_fn = jax.jit(checkpoints.load_checkpoint_distribution(str(run), env, params, side))
    num_ids = env.config.num_attack_ids if side == "attacker" else env.config.num_defense_actions
    n = 4000
    sample = jax.jit(jax.vmap(policy, in_axes=(0, None, None)))
    for i, state in enumerate(_states(env, params)):
        obs = side_observation(env, state, side)
        p = np.asarray(probs_fn(obs, state), np.float64)
        assert p.shape == (num_ids,) and abs(p.sum() - 1) < 1e-5 and (p >= 0).all()
        if KINDS[kind][0] == "dqn":
            assert p.max() == 1.0  # greedy: one id
        ids = np.asarray(sample(jax.random.split(jax.random.PRNGKey(i), n), obs, state))
        freq = np.bincount(ids, minlength=num_ids)[:num_ids] / n
        assert freq[p == 0].sum() == 0, "sampled an id of probability 0"
        se = np.sqrt(p * (1 - p) / n)
        np.testing.assert_array_less(np.abs(freq - p), 5 * se + 2e-3, err_msg=f"state {i}")
        # masked runs put no mass on illegal ids
        legal = np.zeros(num_ids, bool)
        legal[legal_ids(env, state, params, side)] = True
        config = json.loads((run / "config.json").read_text())
        if config["mask_illegal"]:
            assert p[~legal].sum() == 0


def _exit_2(fn, capsys):
    with pytest.raises(SystemExit) as exc:
        fn()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    message = err.strip().splitlines()[-1]
    assert "Traceback" not in err and "tensorstore" not in err.lower() and "orbax" not in err.lower(), err
    return message


def _play_exit_2(argv, capsys):
    return _exit_2(lambda: play.main(argv, stdin=io.StringIO(""), console=Console(file=io.StringIO())), capsys)


def test_mismatches_are_one_sentence_and_exit_2(tmp_path_factory, capsys):
    ppo_run, _, _ = run_of(tmp_path_factory, "ppo")  # an attacker of v0
    dqn_run, _, _ = run_of(tmp_path_factory, "dqn")  # a defender of v0
    spec = f"checkpoint:{ppo_run}"
    # side: the attacker run as the defender, in play and in render
    msg = _play_exit_2(["--env", "idsgame-v0", "--side", "attacker", "--opponent", spec], capsys)
    assert "cannot play the defender" in msg
    msg = _exit_2(lambda: render.main(["--env", "idsgame-v0", "--defender", spec]), capsys)
    assert "cannot play the defender" in msg
    # environment: a v0 run on v3
    msg = _play_exit_2(["--env", "idsgame-v3", "--side", "defender", "--opponent", spec], capsys)
    assert "trained on 'idsgame-random_defense-v0'" in msg
    # algorithm: asked for PPO, given DQN; resuming a PPO run with DQN's command
    with pytest.raises(UsageError, match="holds a dqn run, not a ppo run"):
        ppo.load_policy(str(dqn_run), *idsjax.make("idsgame-maximal_attack-v0"), side="defender")
    msg = _exit_2(lambda: dqn.main(["--resume", "--output-dir", str(ppo_run), "--no-progress"]), capsys)
    assert "holds a 'ppo' run, not 'dqn'" in msg
    # a self-play run needs its side named through the API
    sp_run, _, _ = run_of(tmp_path_factory, "selfplay-attacker")
    with pytest.raises(UsageError, match="name the side"):
        checkpoints.load_policy(str(sp_run), *idsjax.make("idsgame-v19"))
    # no loader for a scheme: one sentence
    with pytest.raises(PolicyLoadError, match="no policy loader for 'nosuch:'"):
        resolve_policy("nosuch:x", "attacker", *idsjax.make("idsgame-v0"))
    msg = _play_exit_2(["--env", "idsgame-v0", "--opponent", "nosuch:x"], capsys)
    assert "no policy loader" in msg


def _corrupt(step_dir):
    for root, _, files in os.walk(step_dir):
        for name in files:
            if os.sep + "state" in root + os.sep:
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")


def test_corrupt_latest_checkpoint_falls_back_then_fails_with_a_sentence(tmp_path_factory, tmp_path, capsys):
    run, _, _ = run_of(tmp_path_factory, "ppo")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    steps = sorted(int(d) for d in os.listdir(broken / "checkpoints") if d.isdigit())
    assert len(steps) == 2, steps  # --checkpoint-every keeps the last two
    _corrupt(broken / "checkpoints" / str(steps[-1]))
    capsys.readouterr()
    gif = tmp_path / "fallback.gif"
    assert (
        render.main(["--env", "idsgame-random_defense-v0", "--attacker", f"checkpoint:{broken}", "--out", str(gif)])
        == 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    warnings = [line for line in err if line.startswith("warning:")]
    assert len(warnings) == 1 and f"update {steps[0]}" in warnings[0] and str(steps[-1]) in warnings[0], err
    _corrupt(broken / "checkpoints" / str(steps[0]))
    msg = _exit_2(
        lambda: render.main(["--env", "idsgame-random_defense-v0", "--attacker", f"checkpoint:{broken}"]), capsys
    )
    assert "is corrupt" in msg and "no earlier intact checkpoint" in msg and str(steps[-1]) in msg


def test_loaded_policy_is_jittable_on_any_id_of_its_version(tmp_path_factory):
    run, side, _ = run_of(tmp_path_factory, "selfplay-defender")
    env, params = idsjax.make("idsgame-maximal_attack-v19")  # not the id it was trained on: same version
    policy = jax.jit(checkpoints.load_checkpoint_policy(str(run), env, params, side))
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    action = policy(jax.random.PRNGKey(1), obs, state)
    assert action.shape == () and action.dtype == jnp.int32
    assert 0 <= int(action) < env.config.num_defense_actions


def test_a_masked_policy_takes_the_legal_ids_of_a_view_instead_of_the_state(tmp_path_factory):
    """What a game server's client has is its view: the legal ids it was sent stand in for the state
    (self-play runs are trained with --mask-illegal). Same key, same game: the same move either way."""
    run, side, env_id = run_of(tmp_path_factory, "selfplay-attacker")
    env, params = idsjax.make(env_id)
    policy = checkpoints.load_checkpoint_policy(str(run), env, params, side)
    by_state, by_mask = jax.jit(policy), jax.jit(lambda k, o, m: policy(k, o, None, m))
    key = jax.random.PRNGKey(3)
    _, state = env.reset(key, params)
    width = env.config.num_attack_ids
    for i in range(20):
        key, k_move, k_step, k_def = jax.random.split(key, 4)
        obs = side_observation(env, state, side)
        legal = np.zeros(width, bool)
        legal[legal_ids(env, state, params, side)] = True
        a = int(by_state(k_move, obs, state))
        assert int(by_mask(k_move, obs, legal)) == a and legal[a]
        defense = int(jax.random.randint(k_def, (), 0, env.config.num_defense_actions))
        state = checkpoints_step(env, k_step, state, a, defense, params)
    with pytest.raises(UsageError, match="mask-illegal: pass the game state or the legal-action mask"):
        policy(key, side_observation(env, state, side), None)


def checkpoints_step(env, key, state, attack, defense, params):
    """One joint move of the two-agent game, restarting a finished episode."""
    from idsjax.policies import joint_step

    state, _, info = joint_step(env, key, state, jnp.int32(attack), jnp.int32(defense), params)
    if bool(state.done):
        _, state = env.reset(key, params)
    return state


def test_a_run_saved_before_defense_detection_is_restored(tmp_path):
    """A checkpoint written when the game state kept `defense` and `detection` apart (before
    `EnvState.defense_detection`) restores into today's runner, the two joined; one whose shapes
    differ otherwise is still refused in a sentence."""
    from baselines.checkpoints import restore_checkpoint, save_checkpoint

    env, params = idsjax.make("idsgame-v3")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    state = state.replace(detection=state.detection.at[1, 2].set(7), position=state.position.at[0].set(3))
    old_state = {name: getattr(state, name) for name in state.__dataclass_fields__ if name != "defense_detection"}
    old_state.update(defense=state.defense, detection=state.detection)
    config = {"algo": "ppo", "env": "idsgame-v3"}
    save_checkpoint(str(tmp_path / "old"), 4, {"env": {"state": old_state}, "rng": keys[0]}, 1.5, config)

    runner, update, wall = restore_checkpoint(str(tmp_path / "old"), {"env": {"state": state}, "rng": keys[0]})
    assert (update, wall) == (4, 1.5)
    assert isinstance(runner["env"]["state"], type(state))
    for got, want in zip(
        jax.tree.leaves(runner), jax.tree.leaves({"env": {"state": state}, "rng": keys[0]}), strict=True
    ):
        np.testing.assert_array_equal(got, want)

    old_state["attack"] = old_state["attack"][:2]  # another batch: not an older layout of this runner
    save_checkpoint(str(tmp_path / "other"), 4, {"env": {"state": old_state}, "rng": keys[0]}, 1.5, config)
    with pytest.raises(UsageError, match="corrupt or belongs to another configuration"):
        restore_checkpoint(str(tmp_path / "other"), {"env": {"state": state}, "rng": keys[0]})
