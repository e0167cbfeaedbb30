"""A canonical hash of a network, invariant to node order: `network_hash(params, shape) -> uint32[2]`.

    h = network_hash(state.network, env.shape)            # inside jit, one network
    hashes = hash_networks(env.with_pool(key, 100).pool, env.shape)   # host: uint32[K, 2], one vmap
    exclude = exclusion_set(hashes)                        # sorted, unique: `contains(exclude, h)`

Two networks that are the same game up to renumbering their nodes hash equal; networks that differ in
anything the game reads hash differently except with negligible probability (two 32-bit lanes).

How: Weisfeiler-Lehman colour refinement. Every real node starts with a colour hashed from what the
game reads of it; each round, a node's new colour hashes its colour with the multisets of its
successors', predecessors' and neighbours' colours (each multiset a wrapping sum of mixed colours,
so it does not depend on order) and the ordered colours of its local-view slots. The partition into
colour classes stabilises after at most n − 1 rounds for n real nodes; rounds run until one splits no
class (at most n, a traced count: padding does not change it). The hash mixes the global numbers with the multiset of final
colours. Padded nodes (`node_mask` False) and padded attack types (`type_mask` False) take no part, so
padding a network to more nodes or types leaves its hash unchanged.

WL is not a complete isomorphism test: two non-isomorphic networks can share a hash (e.g. some regular
graphs with equal node colours). For held-out splits that is the safe direction: isomorphic networks
always hash equal, so excluding a held-out hash excludes every renumbering of it, and a collision only
excludes more training networks than needed (a more conservative held-out set).

What is hashed, and why (the fields of `ScenarioParams` and its `ScenarioArrays`):
- per node: role, whether it is the start / data node, layer (rewards and bots read it), start weight,
  the four value ranges, the vulnerability candidates / always flags, and per real attack type the
  fixed vulnerability and the construction-time layout (initial attack, defense, recon; initial
  detection per node), which non-randomised resets restore and dense-v3 rewards measure against;
- edges: `reach` (both directions as separate relations), `neighbors` (what a partial view shows) and
  the local-view slots in order;
- globals: the real node count, attack types, value cap, randomize, per-layer / per-node vulnerability
  counts, view, visibility and detection factor (their float32 bits), reward family, and the shape's
  switches that change the game (reconnaissance, local view and its slot count, the reward options).
Not hashed: `position` (only drawings read it); `draw_slot`, which only says which uniform of a key
each node ranks by in the per-layer draw: slots are distinct by construction, so the draw's
distribution is the same under any assignment, exactly as under renumbering; the horizon
(`max_steps`, `max_steps_in_episode`), which a `GeneratedEnv` sets from its params at every draw, so
a pool drawn under another horizon still matches; `reference_defense_score`, a function of what is
hashed. Scripted bots that break ties by node index play a renumbered network's ties differently;
the hash still treats the two as one network (the conservative direction again).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.arrays import ScenarioShape
from idsjax.scenario.game import ScenarioParams

# Per lane: a 32-bit finaliser (two multiply-xorshift rounds) with its own constants, so the lanes
# are two different hash functions of the same words (murmur3's fmix32; Wellons' lowbias32).
_FMIX = (
    (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16),
    (16, 0x7FEB352D, 15, 0x846CA68B, 16),
)
_GOLDEN = np.uint32(0x9E3779B9)
# Domain seeds: each use of the mixer starts from its own constant, so words of different roles
# (a node's features, a successor's colour, a slot, the final multiset) never alias one another.
_SEED_NODE, _SEED_TYPE, _SEED_ROUND, _SEED_OUT, _SEED_IN, _SEED_NB = (
    0x243F6A88,
    0x85A308D3,
    0x13198A2E,
    0x03707344,
    0xA4093822,
    0x299F31D0,
)
_SEED_SLOT, _SEED_FINAL, _SEED_GLOBAL = 0x082EFA98, 0xEC4E6C89, 0x452821E6


def _u32(x) -> jax.Array:
    """Any integer, bool or float32 array as uint32 words (floats by their bits, negatives wrapped)."""
    x = jnp.asarray(x)
    if x.dtype == jnp.float32:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    return jax.lax.bitcast_convert_type(x.astype(jnp.int32), jnp.uint32)


def _fmix(h: jax.Array, lane: int) -> jax.Array:
    s1, m1, s2, m2, s3 = _FMIX[lane]
    h = h ^ (h >> np.uint32(s1))
    h = h * np.uint32(m1)
    h = h ^ (h >> np.uint32(s2))
    h = h * np.uint32(m2)
    return h ^ (h >> np.uint32(s3))


def _mix(h: jax.Array, word: jax.Array, lane: int) -> jax.Array:
    """One word into the running hash `h`; for a fixed `h` it is a bijection of `word` (the finaliser is
    invertible), so two sequences that differ in one word never collide at that word."""
    return _fmix(h ^ (word + _GOLDEN + (h << np.uint32(6)) + (h >> np.uint32(2))), lane)


def _seq(lane: int, seed: int, words) -> jax.Array:
    """The order-dependent hash of `words` (broadcast together) in lane `lane`."""
    h = jnp.uint32(seed)
    for w in words:
        h = _mix(h, _u32(w), lane)
    return h


def _both(seed: int, words) -> jax.Array:
    """`_seq` in both lanes, stacked on a last axis of 2."""
    return jnp.stack([_seq(0, seed, words), _seq(1, seed, words)], axis=-1)


def _multiset(relation: jax.Array, messages: jax.Array) -> jax.Array:
    """uint32[N, 2]: per node `i`, the wrapping sum of `messages[j]` over `relation[i, j]`."""
    return jnp.sum(jnp.where(relation[:, :, None], messages[None, :, :], jnp.uint32(0)), axis=1, dtype=jnp.uint32)


def network_hash(params: ScenarioParams, shape: ScenarioShape) -> jax.Array:
    """uint32[2]: the canonical hash of one network (no batch axis); pure and jittable (see the module
    docstring for what it reads). `shape` is the network's compiled shape: only its game switches are
    hashed (reconnaissance, local view, reward options), not its padded sizes."""
    arr = params.scenario
    mask = arr.node_mask
    n = mask.shape[-1]
    nodes = jnp.arange(n)
    a = arr.type_mask.shape[-1]

    # Initial colours: what the game reads of each node, then its real attack types in order.
    def node_words(lane):
        h = _seq(
            lane,
            _SEED_NODE,
            [
                arr.role,
                nodes == arr.start_node,
                nodes == arr.data_node,
                arr.layer,
                arr.start_weight,
                arr.vulnerable_candidate,
                arr.vulnerable_always,
                params.initial_detection,
                *(
                    getattr(arr, f"{name}_range")[:, k]
                    for name in ("attack", "defense", "detection", "vulnerability")
                    for k in (0, 1)
                ),
            ],
        )
        for t in range(a):
            typed = _seq(
                lane,
                _SEED_TYPE + t,
                [
                    arr.vulnerable_fixed[:, t],
                    params.initial_attack[:, t],
                    params.initial_defense[:, t],
                    params.initial_recon[:, t],
                ],
            )
            # Padded types are skipped, not hashed as zeros: padding types leaves the hash unchanged.
            h = jnp.where(arr.type_mask[t], _mix(h, typed, lane), h)
        return h

    colour = jax.lax.optimization_barrier(jnp.stack([node_words(0), node_words(1)], axis=-1))  # [N, 2]

    real_pair = mask[:, None] & mask[None, :]
    out_edges = arr.reach & real_pair
    in_edges = out_edges.T
    neighbours = arr.neighbors & real_pair
    slots = arr.local_view  # [N, S] node ids, -1 empty
    slot_live = (slots >= 0) & mask[jnp.clip(slots, 0, n - 1)] & (shape.local_view)
    slot_target = jnp.clip(slots, 0, n - 1)

    def refine(_, colour):
        c0, c1 = colour[:, 0], colour[:, 1]
        # Barriers: left free, XLA fuses each message's hash into the N x N sums and the previous
        # round into this one, recomputing them per pair (measured 10x slower per round on the CPU).
        messages = jax.lax.optimization_barrier([_both(seed, [c0, c1]) for seed in (_SEED_OUT, _SEED_IN, _SEED_NB)])
        out_sum, in_sum, nb_sum = (_multiset(r, m) for r, m in zip((out_edges, in_edges, neighbours), messages))
        new = []
        for lane in (0, 1):
            h = _seq(
                lane,
                _SEED_ROUND,
                [c0, c1, out_sum[:, 0], out_sum[:, 1], in_sum[:, 0], in_sum[:, 1], nb_sum[:, 0], nb_sum[:, 1]],
            )
            for s in range(slots.shape[-1]):
                target = slot_target[:, s]
                word = _seq(lane, _SEED_SLOT + s, [c0[target], c1[target]])
                h = jnp.where(slot_live[:, s], _mix(h, word, lane), h)
            new.append(h)
        return jax.lax.optimization_barrier(jnp.stack(new, axis=-1))

    def classes(colour):
        # Real nodes whose colour no lower-numbered real node shares: the number of colour classes.
        same = (colour[:, None, 0] == colour[None, :, 0]) & (colour[:, None, 1] == colour[None, :, 1])
        earlier = same & real_pair & (nodes[None, :] < nodes[:, None])
        return (mask & ~earlier.any(axis=1)).sum().astype(jnp.int32)

    def unstable(carry):
        i, _, count, grew = carry
        return grew & (i < num_real)

    def round_(carry):
        i, colour, count, _ = carry
        colour = refine(i, colour)
        new_count = classes(colour)
        return i + 1, colour, new_count, new_count > count

    # Refinement only splits classes; once a round splits none, the partition is stable and later
    # rounds only rename colours, so stopping there loses nothing. The stopping round is a function
    # of the colours, hence the same for isomorphic networks; at most n rounds (n real nodes).
    num_real = mask.sum().astype(jnp.int32)
    _, colour, _, _ = jax.lax.while_loop(unstable, round_, (jnp.int32(0), colour, classes(colour), jnp.bool_(True)))

    final = _both(_SEED_FINAL, [colour[:, 0], colour[:, 1]])
    total = jnp.sum(jnp.where(mask[:, None], final, jnp.uint32(0)), axis=0, dtype=jnp.uint32)
    local_slots = shape.local_slots if shape.local_view else 0
    globals_ = [
        num_real,
        arr.num_attack_types,
        arr.max_value,
        arr.randomize,
        arr.vulnerable_per_layer,
        arr.vulnerabilities_per_node,
        arr.view,
        jnp.asarray(arr.visibility_p, jnp.float32),
        jnp.asarray(arr.detection_factor, jnp.float32),
        arr.reward_family,
        bool(shape.reconnaissance),
        bool(shape.local_view),
        local_slots,
        bool(shape.reconnaissance_reward),
        bool(shape.extra_reconnaissance_reward),
        total[0],
        total[1],
    ]
    return _both(_SEED_GLOBAL, [jnp.asarray(w) for w in globals_])


def hash_networks(params: ScenarioParams, shape: ScenarioShape) -> np.ndarray:
    """Host: the hashes of stacked networks (a leading axis, e.g. `GeneratedParams.pool` or
    `make_scenario_batch`'s params) as uint32[K, 2], one compiled vmap; one network gives uint32[2]."""
    if not isinstance(params, ScenarioParams):
        raise TypeError(f"hash_networks expects ScenarioParams, got {type(params).__name__}")
    if jnp.ndim(params.scenario.start_node) == 0:
        # One network as a batch of one: the same compiled program as a pool of its shape.
        return np.asarray(_hash_many(jax.tree.map(lambda x: jnp.asarray(x)[None], params), shape))[0]
    return np.asarray(_hash_many(params, shape))


_hash_many = jax.jit(jax.vmap(network_hash, in_axes=(0, None)), static_argnums=1)


def exclusion_set(*hashes) -> np.ndarray:
    """Host: uint32[M, 2], the given hash arrays (each uint32[K, 2] or uint32[2]) joined, deduplicated
    and sorted lexicographically: what `contains` searches and `GeneratedParams.exclude` holds."""
    rows = [np.asarray(h).reshape(-1, 2) for h in hashes]
    for h in rows:
        if h.dtype != np.uint32:
            raise ValueError(f"hashes are uint32 pairs (network_hash), got dtype {h.dtype}")
    joined = np.concatenate(rows) if rows else np.zeros((0, 2), np.uint32)
    return np.unique(joined, axis=0).astype(np.uint32)  # np.unique sorts rows lexicographically


def contains(sorted_hashes: jax.Array, h: jax.Array) -> jax.Array:
    """Whether the pair `h` is a row of `sorted_hashes` (uint32[M, 2], sorted as `exclusion_set` sorts);
    a binary search of ceil(log2(M + 1)) steps, jittable."""
    m = sorted_hashes.shape[0]
    if m == 0:
        return jnp.bool_(False)
    lo, hi = jnp.int32(0), jnp.int32(m)
    for _ in range(int(np.ceil(np.log2(m + 1)))):
        mid = (lo + hi) // 2
        row = sorted_hashes[jnp.minimum(mid, m - 1)]
        below = (row[0] < h[0]) | ((row[0] == h[0]) & (row[1] < h[1]))
        live = lo < hi
        lo = jnp.where(live & below, mid + 1, lo)
        hi = jnp.where(live & ~below, mid, hi)
    row = sorted_hashes[jnp.minimum(lo, m - 1)]
    return (lo < m) & (row[0] == h[0]) & (row[1] == h[1])


def as_ints(hashes) -> list[int]:
    """Host: each uint32 pair as one Python int (`h0 << 32 | h1`), for sets and printing."""
    rows = np.asarray(hashes, np.uint64).reshape(-1, 2)
    return [int(a) << 32 | int(b) for a, b in rows]


def permute_nodes(params: ScenarioParams, order) -> ScenarioParams:
    """The same network with its nodes renumbered: new node `k` is old node `order[k]` (`order` a
    permutation of `0 … max_nodes-1`, padding included). Every node-indexed array moves with its node
    and every node id (start, data, local-view slots) is mapped; the game is the same up to the
    numbering, so `network_hash` is unchanged. Jittable; for tests and mutations."""
    order = jnp.asarray(order, jnp.int32)
    inverse = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=jnp.int32))
    arr = params.scenario
    rows = lambda x: x[order]  # noqa: E731
    scenario = arr.replace(
        node_mask=rows(arr.node_mask),
        role=rows(arr.role),
        start_node=inverse[arr.start_node],
        data_node=inverse[arr.data_node],
        reach=arr.reach[order][:, order],
        neighbors=arr.neighbors[order][:, order],
        layer=rows(arr.layer),
        position=rows(arr.position),
        attack_range=rows(arr.attack_range),
        defense_range=rows(arr.defense_range),
        detection_range=rows(arr.detection_range),
        vulnerability_range=rows(arr.vulnerability_range),
        vulnerable_fixed=rows(arr.vulnerable_fixed),
        vulnerable_candidate=rows(arr.vulnerable_candidate),
        vulnerable_always=rows(arr.vulnerable_always),
        draw_slot=rows(arr.draw_slot),
        start_weight=rows(arr.start_weight),
        local_view=jnp.where(arr.local_view >= 0, inverse[jnp.clip(arr.local_view, 0)], -1)[order],
    )
    return params.replace(
        scenario=scenario,
        initial_attack=rows(params.initial_attack),
        initial_defense=rows(params.initial_defense),
        initial_detection=rows(params.initial_detection),
        initial_recon=rows(params.initial_recon),
    )
