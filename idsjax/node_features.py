"""Per-node static features of the network a game is played on, appended to the observation rows.

    from idsjax.node_features import NodeFeatures
    env, params = idsjax.make("idsgame-minimal_defense-v3")
    env = NodeFeatures(env)                 # obs int8[N, F] -> int8[N, F + 4]
    obs, state = env.reset(key, params)     # obs[:, -4:]: start, server, data, depth

No observation says which node is the start or holds the data, nor how far a node lies from the
start; a policy that reads the observation node by node (`baselines.node_policy`) cannot tell a
server from the data node without them. They are properties of the network, not of the game state,
so they come from the network's arrays: a registered id's fixed network (computed once, in NumPy,
when the program is traced: a constant), a scenario file's params, or a generated family's
`state.network` (drawn at each reset, so recomputed at each step from the state; jittable).

Columns, on the observation's scale (`baselines.networks.OBS_SCALE` = 10 reads them as 0…1):
`start`, `server`, `data` are 10 on a node of that role, else 0; `depth` is the node's shortest-path
distance from the start node along the attacker's edges (`reach`), over the deepest real node's,
times 10, rounded (distinct for depths up to 10; deeper networks share levels). Padding nodes and
real nodes the start cannot reach get 0 in every column, so a padding row stays all zero.

A wrapper, not an option of the environments, so that every existing environment's observations stay
as they are (the reference-parity tests read them) and any environment gains the columns alike. The
state is the wrapped environment's own, unchanged. Views whose rows are not nodes (the attacker's
local views of v14, v15, v18) are refused.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from idsjax.arrays import ScenarioArrays, fixed
from idsjax.network import DATA, SERVER, START
from idsjax.wrappers import ObservationWrapper

FEATURES = ("start", "server", "data", "depth")
SCALE = 10  # the observations' value scale: a policy dividing by it reads 0…1
SIDES = ("attacker", "defender")


def depth_hops(reach, node_mask, start_node) -> Any:
    """int32[N]: hops from `start_node` along `reach` (`reach[p, q]`: p may attack q), -1 where the
    start cannot reach (and on padding). NumPy in, NumPy out (a fixed network); jax arrays: traced."""
    xp = np if fixed(reach) is not None and fixed(node_mask) is not None and fixed(start_node) is not None else jnp
    n = reach.shape[-1]
    reach = xp.asarray(reach, bool) & xp.asarray(node_mask, bool)[None, :]
    frontier = xp.arange(n) == start_node
    depth = xp.where(frontier, 0, -1)

    # Breadth-first by frontiers: after k rounds every node at distance k is labelled. N - 1 rounds
    # reach every node a path reaches; a fixed count keeps the traced version one static loop.
    def expand(k, carry):
        frontier, depth = carry
        nxt = (frontier.astype(xp.int32) @ reach.astype(xp.int32) > 0) & (depth < 0)
        return nxt, xp.where(nxt, k, depth)

    carry = (frontier, depth)
    if xp is np:
        for k in range(1, n):
            carry = expand(k, carry)
    else:
        carry = jax.lax.fori_loop(1, n, expand, carry)
    return carry[1]


def node_features(arrays: ScenarioArrays) -> Any:
    """int8[N, 4]: the `FEATURES` columns of every node of `arrays` (see the module docstring)."""
    xp = np if all(fixed(x) is not None for x in (arrays.reach, arrays.node_mask, arrays.role)) else jnp
    depth = depth_hops(arrays.reach, arrays.node_mask, arrays.start_node)
    real = xp.asarray(arrays.node_mask, bool)
    role = xp.asarray(arrays.role)
    deepest = xp.maximum(xp.where(real, depth, 0).max(), 1)
    level = xp.where(real & (depth >= 0), xp.round(SCALE * depth / deepest), 0)
    cols = [xp.where(real & (role == r), SCALE, 0) for r in (START, SERVER, DATA)] + [level]
    return xp.stack(cols, axis=-1).astype(xp.int8)


def network_of(env, state, params) -> ScenarioArrays:
    """The arrays of the network `state` is played on: a scenario or generated environment's
    (`game_params`: its params, or the network drawn into the state), or a registered id's."""
    if hasattr(env, "game_params"):
        return env.network_arrays(env.game_params(state, params))
    return env.network_arrays(params)


def _node_rows(env, side: str) -> bool:
    """Whether `side`'s observation rows are the network's nodes (not a local view's slots)."""
    shape = env.shape
    return not (side == "attacker" and shape.local_view) and env.observation_shape(side)[0] == shape.max_nodes


class NodeFeatures(ObservationWrapper):
    """`env` with `FEATURES` appended to every observation row (see the module docstring)."""

    columns = len(FEATURES)

    def __init__(self, env):
        if isinstance(env, NodeFeatures):
            raise ValueError("this environment already has node features")
        if not hasattr(env, "network_arrays") or not hasattr(env, "observation_shape"):
            raise ValueError(
                f"node features need an idsjax environment (a registered id, a scenario or a generated "
                f"family), got {type(env).__name__}"
            )
        sides = SIDES if env.learner == "both" else (env.learner,)
        rows = [s for s in sides if not _node_rows(env, s)]
        if rows:
            raise ValueError(
                f"node features need one observation row per node; {getattr(env, 'name', 'this game')}'s "
                f"{rows[0]} view has {env.observation_shape(rows[0])[0]} rows (local views show slots, not nodes)"
            )
        super().__init__(env)

    def observe(self, obs, state, params):
        """`obs` with the columns of the network `state` is played on."""
        feats = node_features(network_of(self._env, state, params))
        return jax.tree.map(lambda o: jnp.concatenate([o, jnp.asarray(feats, o.dtype)], axis=-1), obs)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state, action, params=None):
        params = self._env.default_params if params is None else params
        obs, next_state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        # The final observation belongs to the game that just ended: on a generated family the
        # returned state may already hold the next network, so the pre-step state names the network.
        info = {**info, "final_observation": self.observe(info["final_observation"], state, params)}
        return self.observe(obs, next_state, params), next_state, reward, terminated, truncated, info

    def get_obs(self, state, params=None, key=None):
        params = self._env.default_params if params is None else params
        return self.observe(self._env.get_obs(state, params, key), state, params)

    def side_observation(self, state, side: str, params=None):
        params = self._env.default_params if params is None else params
        return self.observe(self._env.side_observation(state, side, params), state, params)

    def observation_shape(self, side: str) -> tuple[int, ...]:
        rows, width = self._env.observation_shape(side)
        return (rows, width + self.columns)

    def observation_space(self, params=None):
        def widen(box):
            rows, width = box.shape
            return spaces.Box(
                box.low, jnp.maximum(box.high, SCALE).astype(box.dtype), (rows, width + self.columns), box.dtype
            )

        inner = self._env.observation_space(params)
        if isinstance(inner, spaces.Dict):
            return spaces.Dict({k: widen(v) for k, v in inner.spaces.items()})
        return widen(inner)


__all__ = ["FEATURES", "NodeFeatures", "depth_hops", "network_of", "node_features"]
