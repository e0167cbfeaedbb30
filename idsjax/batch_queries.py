"""What a whole batch agrees on, read from inside one game's code.

With params batched, `vmap` turns every `lax.cond`/`lax.switch` on a params value into a select that
computes all branches for every game. `batch_any` and `batch_uniform` read such a value across the
batch instead (their batching rules reduce over the batch axis and return an unbatched value), so a
conditional on them stays a conditional under `vmap`: e.g. no game draws a fresh layout when no game of
the batch randomises, and a batch that plays one reward family computes only that family. They only
choose between computations that give every game the same result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _batch_any_rule(axis_size, in_batched, flag):
    if not in_batched[0]:
        return batch_any(flag), False
    return batch_any(jnp.any(flag, axis=0)), False


@jax.custom_batching.custom_vmap
def batch_any(flag: jax.Array) -> jax.Array:
    """`flag` for one game; under `vmap`, whether it holds for any game of the batch (unbatched)."""
    return jnp.asarray(flag, bool)


batch_any.def_vmap(_batch_any_rule)


def _batch_uniform_rule(axis_size, in_batched, value):
    if not in_batched[0]:
        return batch_uniform(value), (False, False)
    if axis_size == 0:
        return (jnp.bool_(False), jnp.zeros(value.shape[1:], value.dtype)), (False, False)
    same, first = batch_uniform(value[0])
    return (same & jnp.all(value == value[0], axis=0), first), (False, False)


@jax.custom_batching.custom_vmap
def batch_uniform(value: jax.Array):
    """`(True, value)` for one game; under `vmap`, `(whether every game has the same value, the first
    game's value)`, both unbatched."""
    return jnp.bool_(True), jnp.asarray(value)


batch_uniform.def_vmap(_batch_uniform_rule)
