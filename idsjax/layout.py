"""How a game's values are laid out: at construction (once per instance) and at reset (spec §3).

gymnax's auto-reset draws a reset for every game at every step and keeps it only where a game ended,
so a reset's randomness is on the hot path of every randomised version. The whole episode start is
therefore drawn from one `bits` call (one threefry hash per pair of words, fused into the draw by
`idsjax.threefry`), and a uniform subset of columns comes from pairwise comparisons rather than a
double argsort.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from idsjax import backend, threefry
from idsjax.config import UNKNOWN_DEFENSE, GameConfig
from idsjax.types import VALUE_DTYPE, EnvParams

_HALF = 1.0 / (1 << 16)


def _split_uniforms(keys: jax.Array, shapes: dict[str, tuple[int, ...]]) -> dict[str, jax.Array]:
    """Independent uniforms on [0, 1) of the given shapes, 16 bits each, two per 32-bit word of
    `threefry.bits(key, (words,))`, for one key or a batch of keys (`keys[i]`'s uniforms are those of
    that key alone). The batch axis comes *last*: `shape + (batch,)`.

    Every value drawn from them has a range of at most 11, so the 16-bit resolution biases no value by
    more than 11 / 2**16 (and orders columns with ties of probability ~2**-16, resolved towards the
    lower column).
    """
    sizes = [math.prod(shape) for shape in shapes.values()]
    total = sum(sizes)
    num_words = (total + 1) // 2
    batch = keys.shape[: keys.ndim - _key_ndim(keys)]
    # (words, *batch): one game per column, so the draw below is element-wise along rows of games.
    bits = jnp.moveaxis(
        jax.vmap(lambda k: threefry.bits(k, (num_words,)))(keys.reshape((-1,) + keys.shape[len(batch) :])), 0, -1
    )
    bits = bits.reshape((num_words,) + batch)
    # The barrier materialises the words: fused into each of their many consumers, XLA would
    # recompute the hash for every one of them (v12's step ran at half speed).
    bits = jax.lax.optimization_barrier(bits)
    halves = jnp.concatenate([bits & 0xFFFF, bits >> 16])[:total]
    flat = halves.astype(jnp.float32) * _HALF
    out, start = {}, 0
    for (name, shape), size in zip(shapes.items(), sizes):
        out[name] = flat[start : start + size].reshape(shape + batch)
        start += size
    return out


def _key_ndim(keys: jax.Array) -> int:
    """Dimensions of one key: 0 for typed keys, 1 for raw uint32 keys."""
    return 0 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else 1


def _uniform_int(u: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Integers uniform on `low … high` (inclusive) from uniforms on [0, 1)."""
    span = high - low + 1
    return low + jnp.minimum((u * span).astype(jnp.int32), span - 1)


def draw_layout(key: jax.Array, config: GameConfig, params: EnvParams, randomize: bool):
    """The reference's `set_state` (spec §3.2) as one vectorised draw.

    Each server row gets `vulnerable_servers_per_layer` distinct vulnerable columns; each vulnerable
    node, and always the data node, gets `vulnerabilities_per_node` type draws with replacement (Q19);
    vulnerable types take the node's vulnerability value, the others the defense value.
    With `randomize` every value is uniform on its range of `params`; without, the values are the
    construction values (the top of the defense/attack/detection ranges, the bottom of the
    vulnerability range). Distributions match the reference; its NumPy stream is not reproduced.

    `key` is one key, or a batch of keys (leading axes) for as many games: `draw_layout(keys)[f][i]`
    is `draw_layout(keys[i])[f]`, bit for bit. The batch is computed with the games along the last
    axis, where the element-wise work vectorises; under `vmap` they would sit first, and every
    operation would run over rows of 2-10 values (benchmarks/NOTES.md §7).

    Returns (attack, defense, detection, recon, revealed).
    """
    net = config.network
    n, a = config.num_nodes, config.attack_types
    u = _split_uniforms(
        key,
        {
            "columns": (net.rows, net.cols),
            "types": (n, a),
            "defense": (n, a),
            "attack": (n, a),
            "detection": (n,),
            "vulnerability": (n,),
            "visibility": (n,),
        },
    )
    batch = key.shape[: key.ndim - _key_ndim(key)]
    t = (1,) * len(batch)  # trailing axes of constants, against the batch's

    def values(name, bounds, use_low):
        if randomize:
            return _uniform_int(u[name], bounds[0], bounds[1])
        return jnp.broadcast_to(bounds[0] if use_low else bounds[1], u[name].shape)

    # A uniform `vpl`-subset of the columns of each row: the columns whose uniform ranks below vpl.
    # beats[r, i, j]: column j's uniform ranks below column i's (ties: the lower column first).
    cols = u["columns"]
    col_index = np.arange(net.cols)
    lower_column = (col_index[None, :] < col_index[:, None]).reshape((1, net.cols, net.cols) + t)
    beats = (cols[:, None] < cols[:, :, None]) | ((cols[:, None] == cols[:, :, None]) & lower_column)
    vulnerable_cell = beats.sum(axis=2) < params.vulnerable_servers_per_layer
    is_data = (np.arange(n) == net.data_node).reshape((n,) + t)
    vulnerable_node = vulnerable_cell[net.node_row, net.node_col] | is_data

    draws = _uniform_int(u["types"], 0, a - 1)  # draw j of node n is draws[n, j]
    # The barrier keeps XLA from constant-folding the draw over the whole batch when params are
    # compile-time constants and no type is drawn (v12, v21: seconds of compile at large batches).
    draw_used = jax.lax.optimization_barrier(jnp.arange(a) < params.vulnerabilities_per_node)
    type_ids = np.arange(a).reshape((1, 1, a) + t)
    vulnerable_type = (
        jnp.any((draws[:, :, None] == type_ids) & draw_used.reshape((1, a, 1) + t), axis=1) & vulnerable_node[:, None]
    )

    defendable = np.asarray(net.defendable).reshape((n,) + t)
    defense = jnp.where(
        vulnerable_type,
        values("vulnerability", params.vulnerability_range, True)[:, None],
        values("defense", params.defense_range, False),
    )
    defense = jnp.where(defendable[:, None], defense, 0).astype(VALUE_DTYPE)
    attack = jnp.where(defendable[:, None], values("attack", params.attack_range, False), 0).astype(VALUE_DTYPE)
    detection = jnp.where(defendable, values("detection", params.detection_range, False), 0).astype(VALUE_DTYPE)

    if randomize and config.spec.randomize_visibility:
        revealed = u["visibility"] < params.visibility_p
    else:
        revealed = jnp.zeros(u["visibility"].shape, bool)
    recon = jnp.where(revealed[:, None], defense, UNKNOWN_DEFENSE).astype(VALUE_DTYPE)
    if batch:
        # Into memory while the games are still last, where each value is one vectorised pass; left
        # to XLA, every kernel of the transposes below recomputed its values per element, reading
        # the words across the batch (v12's resets: +30% steps/s; benchmarks/NOTES.md §12).
        attack, defense, detection, recon, revealed = backend.materialise((attack, defense, detection, recon, revealed))
    # Back to games first.
    return tuple(
        jnp.moveaxis(x, tuple(range(x.ndim - len(batch), x.ndim)), tuple(range(len(batch))))
        for x in (attack, defense, detection, recon, revealed)
    )


def start_position(key: jax.Array, config: GameConfig) -> jax.Array:
    """The attacker's node at reset. With random starts the reference mistakes the empty cells of the
    start row for the start node, so the start gets `C/(L·S+C)` and each server `1/(L·S+C)` (Q17)."""
    net = config.network
    if not config.spec.random_start:
        return jnp.int32(net.start_node)
    servers = net.layers * net.servers_per_layer
    pick = _uniform_int(threefry.uniform(key), 0, servers + net.cols - 1)
    return jnp.where(pick < servers, pick + 1, net.start_node).astype(jnp.int32)
