"""Shared test setup: a persistent JAX compilation cache, one directory per jaxlib version, and the
reference oracle required where CI runs (`IDSJAX_REQUIRE_REFERENCE=1`, set by `make test`)."""

import os
from pathlib import Path

import jax
import jaxlib
import pytest

# "-lru": entries written with the lock on carry the access times its eviction reads; a directory from
# before (no access times) would make every write fail.
_CACHE = Path(__file__).resolve().parent.parent / ".jax_cache" / f"jaxlib-{jaxlib.__version__}-lru"
# A size limit turns on JAX's file lock around every read and write of the cache. Without it (the
# default, no limit) an entry is written in place, and a process that reads it meanwhile, another
# xdist worker or a process a test started that compiled the same program, gets a truncated
# executable, which XLA's loader does not check: the worker dies of a segmentation fault (seen in the
# slow suite, in `compilation_cache.get_executable_and_time`). 8 GiB is far above what the suites write.
_CACHE_MAX_BYTES = 8 << 30
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_compilation_cache_max_size", _CACHE_MAX_BYTES)
# The same cache for the processes the tests start (servers, command lines): JAX reads its options
# from these variables, so a program one of them compiled is not compiled again by the next.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(_CACHE_MAX_BYTES))


def _memory_maps() -> int | None:
    """How many memory mappings this process holds (Linux), or None where that cannot be read."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def _map_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530  # Linux's default


# Every program XLA:CPU loads maps its code into the process, and JAX keeps every compiled program of
# every `jit` while the process lives. A test worker that compiles a few thousand programs (the slow
# suite's 22 x 5 lockstep tests alone compile hundreds of large ones) runs past the kernel's limit on
# mappings (vm.max_map_count, 65,530 by default), and the next mapping LLVM asks for fails: the
# worker dies of a segmentation fault while loading a program (seen in the slow suite, in
# `compilation_cache.get_executable_and_time` and `backend_compile_and_load`). Past a third of the
# limit, the compiled programs are dropped between tests; the next test that needs one compiles it
# again, or reads it from the persistent cache.
_MAPS_BEFORE_CLEARING = _map_limit() // 3


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    yield
    count = _memory_maps()
    if count is not None and count > _MAPS_BEFORE_CLEARING:
        import gc

        jax.clear_caches()
        gc.collect()


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def pytest_sessionstart(session):
    """Without the oracle the parity tests skip; where it is required, a missing oracle is an error,
    so a broken install can never pass as 110 skipped parity tests."""
    if not _flag("IDSJAX_REQUIRE_REFERENCE"):
        return
    if _flag("IDSJAX_TESTS_WITHOUT_REFERENCE"):
        raise pytest.UsageError(
            "IDSJAX_REQUIRE_REFERENCE and IDSJAX_TESTS_WITHOUT_REFERENCE are both set; unset one of them"
        )
    from reference_oracle import quiet_reference  # its warnings and gym's banner silenced, here only

    try:
        with quiet_reference():
            import gym_idsgame.envs.idsgame_env  # noqa: F401
    except Exception as err:  # noqa: BLE001 — any failure to import means the oracle is unusable
        raise pytest.UsageError(
            f"IDSJAX_REQUIRE_REFERENCE is set but the reference oracle (gym-idsgame 1.0.13) cannot be "
            f"imported ({type(err).__name__}: {err}); run `make reference` to install it"
        ) from None
