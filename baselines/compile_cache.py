"""JAX's persistent compilation cache for the kit's long commands (the reference grid, the league).

A command that compiles the same programs again (a resumed grid, the league's modes on one env) reads
them back from disk. The cache is given a size limit because that is what turns on JAX's file lock
around every read and write: without one an entry is written in place, and a second process reading
it meanwhile (two commands on one machine, a test suite beside a run) loads a truncated executable,
which XLA's loader does not check, and dies of a segmentation fault. The eviction that comes with the
limit reads each entry's access time, which only a locked cache writes: give it a directory of its
own (a cache written without the limit makes every later write fail with a warning).
"""

from __future__ import annotations

MAX_BYTES = 8 << 30  # far above what a grid or a league writes; only there to turn the lock on


def use_persistent_cache(path: str, min_compile_seconds: float = 1.0) -> None:
    """Cache every program that takes at least `min_compile_seconds` to compile under `path`, locked."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
