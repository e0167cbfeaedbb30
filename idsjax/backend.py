"""Which of idsjax's CPU-specific fast paths a program takes, decided in this one place.

Two speed-ups were measured on the CPU only (benchmarks/NOTES.md §7, §8.2, §10):

- `fused_threefry`: `idsjax.threefry` writes jax.random's threefry hash out as element-wise code that
  XLA fuses, because the CPU lowering runs it as a rolled loop of its own per call. GPUs and TPUs
  already unroll it, so elsewhere `idsjax.threefry` calls `jax.random` itself.
- `materialise_barrier`: `materialise` (below) computes a step's
  random draws into memory once, because XLA's CPU fusion otherwise recomputes them in every kernel
  that reads them. Elsewhere it returns its argument untouched.

Both change only speed, never values: each path returns what `jax.random` and `vmap(env.step)`
return, bit for bit, on every backend. Neither has been measured on an accelerator, so they are taken
only on the CPU backend; `IDSJAX_FAST_PATHS=on` (or `set_fast_paths("on")`) forces them everywhere and
`off` nowhere, which is how `benchmarks/device_check.sh` measures them on a GPU. The decision is read
when a program is traced, from the default backend (`jax.default_backend()`), and each choice is
logged once per backend on the `idsjax.backend` logger ("using … on cpu").

(The third CPU-specific choice, one JAX device per core, lives in `benchmarks.cpu_devices`: it sets
`jax_num_cpu_devices`, which configures the CPU backend only, so it changes nothing on a GPU or TPU
host, where the benchmarks split their batch over the accelerators.)
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import jax.numpy as jnp

from idsjax.batch_queries import batch_any

MODES = ("auto", "on", "off")
ENV_VAR = "IDSJAX_FAST_PATHS"
PATHS = {
    "fused_threefry": "the fused threefry hash (idsjax.threefry)",
    "materialise_barrier": "the materialise barrier (idsjax.batched.materialise)",
}

log = logging.getLogger(__name__)
_mode: str | None = None  # set_fast_paths' choice; None: the environment variable's
_logged: set[tuple[str, str, bool]] = set()


def set_fast_paths(mode: str | None) -> None:
    """`auto` (the CPU only), `on`, `off`, or None to follow `IDSJAX_FAST_PATHS` again. Programs
    traced afterwards follow it; compiled ones keep the choice they were traced with."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"fast-path mode must be one of {', '.join(MODES)}, got {mode!r}")
    global _mode
    _mode = mode


def mode() -> str:
    chosen = _mode if _mode is not None else os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)}, got {chosen!r}")
    return chosen


def _take(path: str) -> bool:
    platform = jax.default_backend()
    chosen = mode()
    taken = platform == "cpu" if chosen == "auto" else chosen == "on"
    if (path, platform, taken) not in _logged:
        _logged.add((path, platform, taken))
        why = "" if chosen == "auto" else f" ({ENV_VAR}={chosen})"
        log.info("%s %s on %s%s", "using" if taken else "not using", PATHS[path], platform, why)
    return taken


def fused_threefry() -> bool:
    """Whether `idsjax.threefry` computes the hash itself (True) or calls `jax.random` (False)."""
    return _take("fused_threefry")


def materialise_barrier() -> bool:
    """Whether `materialise` puts its barrier in (True) or returns its argument (False)."""
    return _take("materialise_barrier")


def choices() -> dict[str, bool]:
    """Every fast path and whether programs traced now take it (for the benchmarks' records)."""
    return {"fused_threefry": fused_threefry(), "materialise_barrier": materialise_barrier()}


def materialise(tree: Any) -> Any:
    """`tree`, unchanged, computed into memory before anything that reads it.

    XLA's CPU fusion copies a cheap element-wise producer into every kernel that consumes it, and the
    threefry hash behind a key, an action id or the detection uniform is a hundred cheap operations:
    read by two dozen kernels of a step, it was computed two dozen times, most of a step's time
    (benchmarks/NOTES.md §8.2). A `lax.optimization_barrier` on those values left the copies where
    they were (it is gone from the optimised HLO); a conditional's operands are computed once. Its
    predicate is true for every value (`x | 1` is never 0) but opaque to XLA, so the branch that
    would change the values never runs. The predicate is read across the batch (`batch_any`), so
    under an outer `vmap` the conditional stays a conditional, and the barrier with it.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves or not materialise_barrier():
        return tree
    witness = jnp.ravel(leaves[0])[0]
    if jnp.issubdtype(witness.dtype, jax.dtypes.prng_key):
        witness = jnp.ravel(jax.random.key_data(witness))[0]
    always = batch_any((witness.astype(jnp.int32) | 1) != 0)
    # The other branch changes each value (under `vmap` most are one number per game): never taken,
    # and not what XLA can prove equal (were the branches equal, XLA would drop the conditional).
    return jax.lax.cond(always, lambda t: t, lambda t: jax.tree.map(_changed, t), tree)


def _changed(x: jax.Array) -> jax.Array:
    if x.ndim:
        return x[::-1]
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(~jax.random.key_data(x), impl=jax.random.key_impl(x))
    return -x if jnp.issubdtype(x.dtype, jnp.floating) else ~x
