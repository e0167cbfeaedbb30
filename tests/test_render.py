"""Frames: size, sensitivity to the state, and what the players' views hide (spec §11.3)."""

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.render import episode_frames, episode_gif, frame_size, render_frame


@pytest.fixture(scope="module")
def v3():
    env, params = idsjax.make("idsgame-v3")
    return env, params, env.initial_state(jax.random.PRNGKey(0), params)


def differ(a, b):
    return not np.array_equal(a, b)


def test_frame_shape_and_dtype(v3):
    env, params, state = v3
    frame = render_frame(env, state, params)
    assert frame.shape == (*frame_size(env.config), 3) == (96 + 120 * 4, 600, 3)
    assert frame.dtype == np.uint8
    wide, wp = idsjax.make("idsgame-v4")
    assert render_frame(wide, wide.initial_state(jax.random.PRNGKey(0), wp)).shape == (96 + 120 * 6, 1000, 3)


def test_frame_follows_the_state(v3):
    env, params, state = v3
    base = render_frame(env, state)
    assert differ(base, render_frame(env, state.replace(attack=state.attack.at[4, 0].set(1))))
    assert differ(base, render_frame(env, state.replace(position=jnp.int32(5))))
    assert differ(base, render_frame(env, state.replace(detected=jnp.bool_(True), done=jnp.bool_(True))))
    assert differ(base, render_frame(env, state.replace(hacked=jnp.bool_(True), done=jnp.bool_(True))))
    assert differ(base, render_frame(env, state.replace(time=jnp.int32(7))))
    assert differ(base, render_frame(env, state, last_action=(40, 11)))
    assert differ(base, render_frame(env, state, hack_probability=0.5))
    assert np.array_equal(base, render_frame(env, state))  # deterministic


def test_attacker_view_hides_defenses(v3):
    env, _, state = v3
    more_defense = state.replace(defense=state.defense.at[1, 3].set(7), detection=state.detection.at[2].set(5))
    assert differ(render_frame(env, state), render_frame(env, more_defense))
    assert np.array_equal(render_frame(env, state, view="attacker"), render_frame(env, more_defense, view="attacker"))
    # the defender's last move is not shown to the attacker, the attacker's own is
    plain = render_frame(env, state, view="attacker")
    assert np.array_equal(plain, render_frame(env, state, view="attacker", last_action=(None, 11)))
    assert differ(plain, render_frame(env, state, view="attacker", last_action=(40, None)))


def test_attacker_view_shows_reconnaissance():
    env, params = idsjax.make("idsgame-v19")
    state = env.initial_state(jax.random.PRNGKey(0), params)
    unknown = state.replace(recon=jnp.full_like(state.recon, 10), defense=state.defense.at[1, 0].set(5))
    scouted = unknown.replace(
        recon=unknown.recon.at[1].set(unknown.defense[1]), revealed=unknown.revealed.at[1].set(True)
    )
    assert differ(render_frame(env, unknown, view="attacker"), render_frame(env, scouted, view="attacker"))


def test_defender_view_hides_attacker(v3):
    env, _, state = v3
    moved = state.replace(position=jnp.int32(4), attack=state.attack.at[4, 2].set(3))
    assert differ(render_frame(env, state), render_frame(env, moved))
    assert differ(render_frame(env, state, view="attacker"), render_frame(env, moved, view="attacker"))
    assert np.array_equal(render_frame(env, state, view="defender"), render_frame(env, moved, view="defender"))
    plain = render_frame(env, state, view="defender")
    assert np.array_equal(plain, render_frame(env, state, view="defender", last_action=(40, None)))
    assert differ(plain, render_frame(env, state, view="defender", last_action=(None, 11)))
    # a detected attacker is shown caged, to the defender too
    caught = state.replace(detected=jnp.bool_(True), done=jnp.bool_(True))
    elsewhere = caught.replace(position=jnp.int32(4))
    assert differ(render_frame(env, caught, view="defender"), render_frame(env, elsewhere, view="defender"))


def test_bad_arguments(v3):
    env, _, state = v3
    with pytest.raises(ValueError, match="view"):
        render_frame(env, state, view="god")
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    with pytest.raises(ValueError, match="batched"):
        render_frame(env, batched)


def test_episode_gif(tmp_path):
    path = episode_gif("idsgame-v0", "attack_maximal", "defend_minimal", tmp_path / "game.gif", seed=3, max_steps=6)
    frames = iio.imread(path, index=None)
    assert frames.ndim == 4 and frames.shape[0] >= 2 and frames.shape[-1] in (3, 4)
    # any pair of policies on a single-agent id, including a callable (as a trained policy would be)
    env, params = idsjax.make("idsgame-minimal_defense-v0")
    calls = []

    def always_first_legal(key, obs, state):
        calls.append(obs.shape)
        return jnp.argmax(env.attack_mask(state, params)).astype(jnp.int32)

    frames = episode_frames((env, params), always_first_legal, "random_defense", view="attacker", max_steps=3)
    assert 2 <= len(frames) <= 4 and calls and calls[0] == env.config.attacker_observation_shape
    with pytest.raises(ValueError, match="not a defender bot"):
        episode_frames((env, params), None, "attack_maximal")
