"""Record whole batched episodes on the device, save them as a compact `.npz`, load and replay them.

    from idsjax.trajectories import record, save_trajectories, load_trajectories, trajectory_gif
    traj = record("idsgame-v3", "attack_maximal", "defend_minimal", num_games=1024, seed=0)
    traj.hack_probability                      # fraction of the games that ended in a hack
    save_trajectories("v3.npz", traj)
    traj = load_trajectories("v3.npz")
    trajectory_gif(traj, game=0, path="game0.gif")

`record` plays `num_games` games of one id with a pair of policies (bot names, `"random"`, `"SCHEME:ARG"`
such as `checkpoint:RUN_DIR`, or jittable callables `(key, obs, state) -> id`; see `idsjax.policies`)
through `idsjax.rollout` in one jitted `lax.scan` over `max_steps` joint steps (default: the longest
possible episode, `idsjax.rollout.episode_horizon`), each game exactly one episode: a finished game is
frozen and its later steps are marked invalid.

`Trajectories` fields (B games, T steps, N nodes, A attack types):

- states, `[B, T+1, ...]`: `position` int32, `attack`, `defense`, `recon` int8[N, A], `detection` int8[N],
  `revealed` bool[N], `time` int32, `done`, `hacked`, `detected`, `timed_out` bool; index 0 is the
  reset state, index t+1 the state after step t (finished games repeat their last state);
- steps, `[B, T]`: `attack_action`, `defense_action` int32 (-1 where invalid), `rewards` float32[2]
  (attacker, defender; 0 where invalid), `valid` bool, `attack_legal`, `moved` bool;
- outcomes, `[B]`: `length` (joint steps played), `hacked`, `detected`, `timed_out`, `returns` float32[2];
- metadata: `env_id`, `instance_seed`, `seed`, `attacker`, `defender`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.policies import ATTACKER, DEFENDER, default_policy, make_joint_policy_step, policy_name
from idsjax.rollout import JointGame, Transition, episode_horizon, joint_policy, rollout

FORMAT_VERSION = 1
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


@dataclasses.dataclass
class Trajectories:
    """Recorded games as host NumPy arrays (see the module docstring)."""

    env_id: str
    instance_seed: int
    seed: int
    attacker: str
    defender: str
    arrays: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> Any:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

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

    def state(self, game: int, t: int):
        """The `EnvState` of game `game` after `t` joint steps (t = 0: the reset state), for rendering.

        Fields the recorder does not keep (failure counts, dense-reward bookkeeping) are zero."""
        from idsjax.types import EnvState

        a = self.arrays
        get = lambda f: jnp.asarray(a[f][game, t])  # noqa: E731
        attack = get("attack")
        n = attack.shape[0]
        return EnvState.create(
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

    def states(self, game: int):
        """The states of one game, reset state first, up to its last step."""
        return [self.state(game, t) for t in range(int(self.arrays["length"][game]) + 1)]

    def joint_action(self, game: int, t: int) -> tuple[int, int]:
        return int(self.arrays["attack_action"][game, t]), int(self.arrays["defense_action"][game, t])


def _resolve(env_or_id, instance_seed: int):
    if isinstance(env_or_id, str):
        import idsjax

        return idsjax.make(env_or_id, seed=instance_seed)
    return env_or_id


def make_recorder(
    env, params, attacker_policy=None, defender_policy=None, *, num_games: int, max_steps: int | None = None
):
    """A jitted `key -> dict of device arrays` playing `num_games` episodes (see `record`) through
    `idsjax.rollout` on the id as a two-player game (`JointGame`)."""
    steps = episode_horizon(params) if max_steps is None else int(max_steps)
    if steps < 1 or num_games < 1:
        raise ValueError("num_games and max_steps must be positive")
    game = JointGame(env)
    policy = joint_policy(make_joint_policy_step(env, params, attacker_policy, defender_policy))

    def keep(state):
        return {f: getattr(state, f) for f in STATE_FIELDS}

    def step_record(t: Transition):
        valid = t.valid
        after = jax.tree.map(  # a finished game repeats its last state
            lambda new, old: jnp.where(valid.reshape(valid.shape + (1,) * (new.ndim - 1)), new, old),
            t.next_state,
            t.state,
        )
        return {
            **keep(after),
            "attack_action": jnp.where(valid, t.action[ATTACKER], -1),
            "defense_action": jnp.where(valid, t.action[DEFENDER], -1),
            "rewards": jnp.where(valid[:, None], t.reward, 0.0),
            "valid": valid,
            "attack_legal": t.info["attack_legal"] & valid,
            "moved": t.info["moved"] & valid,
        }

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
            record=step_record,
        )
        out = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), episodes.records)  # [B, T, ...]
        first = keep(episodes.initial_state)
        for f in STATE_FIELDS:
            out[f] = jnp.concatenate([first[f][:, None], out[f]], axis=1)
        out["length"] = episodes.length
        out.update(episodes.outcome)
        out["returns"] = out["rewards"].sum(axis=1)
        return out

    return run


def record(
    env_or_id,
    attacker_policy=None,
    defender_policy=None,
    *,
    num_games: int = 16,
    max_steps: int | None = None,
    seed: int = 0,
    instance_seed: int = 0,
) -> Trajectories:
    """Play `num_games` episodes of an id (or an `(env, params)` pair) on the device and return them.

    Policies as in `idsjax.policies` (default: the id's bot on its bot side, `"random"` on the
    learner's side; random bots on two-agent ids); callables must be jittable.
    """
    env, params = _resolve(env_or_id, instance_seed)
    if env.version is None:
        raise ValueError(
            f"trajectories record registered ids (a recording names its game by id, and replays it from that "
            f"id); {env.name} plays a network held in its params: play it with idsjax.rollout or render it "
            f"with idsjax.render.episode_frames"
        )
    run = make_recorder(env, params, attacker_policy, defender_policy, num_games=num_games, max_steps=max_steps)
    out = jax.device_get(run(jax.random.PRNGKey(seed)))
    names = [
        policy_name(p) if p is not None else default_policy(env, side)
        for p, side in ((attacker_policy, ATTACKER), (defender_policy, DEFENDER))
    ]
    return Trajectories(
        env_id=env.config.env_id,
        instance_seed=int(instance_seed),
        seed=int(seed),
        attacker=names[0],
        defender=names[1],
        arrays={k: np.asarray(v) for k, v in out.items()},
    )


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
    }
    with open(path, "wb") as f:
        np.savez_compressed(f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **traj.arrays)
    return path


def load_trajectories(path) -> Trajectories:
    """Read a file written by `save_trajectories`."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "__meta__" not in data.files:
            raise ValueError(f"{os.fspath(path)!r} is not an idsjax trajectory file (no metadata)")
        meta = json.loads(bytes(data["__meta__"]).decode())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported trajectory format {meta.get('format')!r} (expected {FORMAT_VERSION})")
        arrays = {k: np.array(data[k]) for k in data.files if k != "__meta__"}
    return Trajectories(
        env_id=meta["env_id"],
        instance_seed=meta["instance_seed"],
        seed=meta["seed"],
        attacker=meta["attacker"],
        defender=meta["defender"],
        arrays=arrays,
    )


def trajectory_frames(traj: Trajectories, game: int = 0, *, view: str = "full") -> list[np.ndarray]:
    """Render one recorded game, frame by frame (`idsjax.frames.render_frame`)."""
    import idsjax
    from idsjax.frames import render_frame

    env, params = idsjax.make(traj.env_id, seed=traj.instance_seed)
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
    "Trajectories",
    "load_trajectories",
    "make_recorder",
    "record",
    "save_trajectories",
    "trajectory_frames",
    "trajectory_gif",
]
