"""`jax.random`'s threefry draws, bit for bit, as element-wise `jax.numpy` that XLA can fuse.

On the CPU, jaxlib lowers the threefry hash to a rolled loop (five passes over the whole array) to
keep compile times down. Every `split`, `uniform` or `bits` call is then a loop of its own that XLA
cannot fuse with the code around it: about 10 ns per game per call at batch 8,192, on the hot path of
every step (the per-game key split, the detection draw, the auto-reset's key split and layout draw).
The same hash written out is about a hundred element-wise uint32 operations that fuse into the
surrounding kernel: about 1.5 ns (benchmarks/NOTES.md §7). On GPUs and TPUs jaxlib already unrolls
it, so there this changes nothing.

Each function returns exactly what its `jax.random` namesake returns, for threefry keys (raw uint32
keys or typed keys) under `jax_threefry_partitionable`, jax's default; `tests/test_threefry.py` checks
it. With any other key implementation or setting they call `jax.random`, so the results never differ
from it; only the speed does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from idsjax import backend

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_ONE_BITS = np.uint32(np.array(1.0, np.float32).view(np.uint32))


def hash2x32(k1: jax.Array, k2: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), as jax implements it: key words `k1, k2`,
    counter words `x0, x1` (broadcast together), two output words."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _key_words(key: jax.Array) -> tuple[jax.Array, jax.Array] | None:
    """The two uint32 words of a threefry key, or None where this module must defer to jax.random."""
    if not jax.config.jax_threefry_partitionable or not backend.fused_threefry():
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape or str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        data = jax.random.key_data(key)
    else:
        if key.shape != (2,) or key.dtype != jnp.uint32 or jax.config.jax_default_prng_impl != "threefry2x32":
            return None
        data = key
    return data[0], data[1]


def _counters(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """The flat index of every element as (high, low) words: jax's counters for a draw of `shape`."""
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2**32:
        raise ValueError(f"draws of {size} elements are not supported (at most 2**32 - 1)")
    low = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return jnp.zeros_like(low), low


def _as_key(like: jax.Array, words: jax.Array) -> jax.Array:
    """New keys in the format of `like`. They are materialised: a key usually feeds several draws,
    and fused into each of them the hash that made it would be recomputed per element of each
    (random play on v12 ran at a third of its speed)."""
    words = jax.lax.optimization_barrier(words)
    if jnp.issubdtype(like.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(words, impl="threefry2x32")
    return words


def split(key: jax.Array, num: int = 2) -> jax.Array:
    """`jax.random.split(key, num)` for one key."""
    words = _key_words(key)
    if words is None:
        return jax.random.split(key, num)
    a, b = hash2x32(*words, *_counters((num,)))
    return _as_key(key, jnp.stack([a, b], axis=-1))


def fold_in(key: jax.Array, data: jax.Array | int) -> jax.Array:
    """`jax.random.fold_in(key, data)` for one key and a scalar non-negative `data` below 2**32."""
    words = _key_words(key)
    if words is None:
        return jax.random.fold_in(key, data)
    low = jnp.asarray(np.uint32(data) if isinstance(data, int) else data).astype(jnp.uint32)
    a, b = hash2x32(*words, jnp.zeros_like(low), low)
    return _as_key(key, jnp.stack([a, b], axis=-1))


def bits(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """`jax.random.bits(key, shape, jnp.uint32)`."""
    shape = tuple(shape)
    words = _key_words(key)
    if words is None:
        return jax.random.bits(key, shape, jnp.uint32)
    if shape:
        # The key is read once per element: fused in, the hash that made it would be recomputed for
        # every element, so it is materialised first.
        words = jax.lax.optimization_barrier(words)
    a, b = hash2x32(*words, *_counters(shape))
    return a ^ b


def uniform(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """`jax.random.uniform(key, shape)`: float32 on [0, 1)."""
    shape = tuple(shape)
    if _key_words(key) is None:
        return jax.random.uniform(key, shape)
    mantissa = bits(key, shape) >> np.uint32(32 - 23)
    floats = jax.lax.bitcast_convert_type(mantissa | _ONE_BITS, jnp.float32) - np.float32(1.0)
    return jnp.maximum(np.float32(0.0), floats)
