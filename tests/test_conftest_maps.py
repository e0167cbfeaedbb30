"""The test process drops its compiled programs before it runs out of memory mappings (conftest)."""

from __future__ import annotations

import gc

import conftest
import jax
import jax.numpy as jnp
import pytest


def test_dropping_compiled_programs_gives_their_mappings_back():
    """What conftest's fixture relies on: a process's mappings grow with the programs it has compiled,
    and `jax.clear_caches` gives them back."""
    if conftest._memory_maps() is None:
        pytest.skip("no /proc/self/maps here")
    jax.clear_caches()
    gc.collect()
    before = conftest._memory_maps()
    kept = []  # held, as the library's jitted methods are while their environment lives
    for i in range(100):
        f = jax.jit(lambda x, i=i: jnp.sin(x) * i + jnp.cos(x * i))
        f(jnp.ones(8)).block_until_ready()
        kept.append(f)
    grown = conftest._memory_maps()
    assert grown > before + 100  # at least one mapping per program
    jax.clear_caches()
    gc.collect()
    assert conftest._memory_maps() < before + (grown - before) // 2
    assert 0 < conftest._MAPS_BEFORE_CLEARING <= conftest._map_limit() // 3
