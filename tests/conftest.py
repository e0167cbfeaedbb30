"""Shared test setup: a persistent JAX compilation cache, one directory per jaxlib version."""

from pathlib import Path

import jax
import jaxlib

_CACHE = Path(__file__).resolve().parent.parent / ".jax_cache" / f"jaxlib-{jaxlib.__version__}"
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
