"""The canonical network hash (idsjax.scenario.canonical): invariant to node order and padding, changed
by any edit the game reads, the same inside jit as on the host; the exclusion set's binary search."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idsjax.network import DATA, SERVER
from idsjax.scenario.arrays import stack
from idsjax.scenario.builtin import builtin_scenario
from idsjax.scenario.canonical import as_ints, contains, exclusion_set, hash_networks, network_hash, permute_nodes
from idsjax.scenario.env import make_scenario
from idsjax.scenario.generated import make_generated
from idsjax.scenario.generator import Family
from idsjax.scenario.splits import pad_network


def _relabelled(params, shape, count, seed):
    """`count` random renumberings of the network (padding nodes shuffled in too)."""
    rng = np.random.default_rng(seed)
    return [permute_nodes(params, rng.permutation(shape.max_nodes)) for _ in range(count)]


# v3: a partial-view grid; v14: local views (ordered slots of node ids); v19: reconnaissance and random
# starts (start weights on many nodes).
@pytest.mark.parametrize("version", [3, 14, 19])
def test_builtin_hash_ignores_node_order_and_padding(version):
    env, params = make_scenario(builtin_scenario(version))
    own = hash_networks(params, env.shape)
    padded, shape = pad_network(params, env.shape, env.shape.max_nodes + 3, env.shape.attack_types + 1)
    variants = [padded] + _relabelled(padded, shape, 5, seed=version)
    hashes = hash_networks(stack(variants), shape)
    assert hashes.dtype == np.uint32 and hashes.shape == (6, 2)
    assert set(as_ints(hashes)) == set(as_ints(own)), "renumbering or padding changed the hash"


def test_generated_hash_ignores_node_order():
    env, params = make_generated(Family(max_layers=3, max_width=3, edge_p=0.4, lateral_p=0.3))
    pool = env.with_pool(jax.random.PRNGKey(0), 6).pool
    networks = [jax.tree.map(lambda x, i=i: x[i], pool) for i in range(6)]
    relabelled = [q for i, p in enumerate(networks) for q in _relabelled(p, env.shape, 3, seed=i)]
    hashes = hash_networks(stack(networks + relabelled), env.shape)
    original, moved = hashes[:6], hashes[6:].reshape(6, 3, 2)
    np.testing.assert_array_equal(moved, np.broadcast_to(original[:, None, :], moved.shape))
    assert len(set(as_ints(original))) > 1, "six drawn networks should not all be one network"


def _edits(params):
    """Networks that differ from v3's in one thing the game reads, each named."""
    arr = params.scenario
    reach = np.asarray(arr.reach)
    p, q = map(int, np.argwhere(reach)[0])
    role = np.asarray(arr.role)
    servers = np.flatnonzero(role == SERVER)
    data = int(arr.data_node)
    far = int(servers[np.argmax(np.asarray(arr.layer)[servers])])  # a server far from the data node
    s = int(servers[0])

    def with_reach(r):
        r = jnp.asarray(r)
        return params.replace(scenario=arr.replace(reach=r, neighbors=r | r.T))

    added = reach.copy()
    absent = np.argwhere(~reach & np.asarray(arr.node_mask)[:, None] & np.asarray(arr.node_mask)[None, :])
    absent = [(a, b) for a, b in absent if a != b]
    added[absent[0][0], absent[0][1]] = True
    removed = reach.copy()
    removed[p, q] = False
    moved_role = role.copy()
    moved_role[data], moved_role[far] = SERVER, DATA
    return {
        "edge added": with_reach(added),
        "edge removed": with_reach(removed),
        "data node moved": params.replace(scenario=arr.replace(role=jnp.asarray(moved_role), data_node=jnp.int32(far))),
        "one defense value": params.replace(initial_defense=params.initial_defense.at[s, 1].add(1)),
        "one attack value": params.replace(initial_attack=params.initial_attack.at[s, 0].add(1)),
        "one detection value": params.replace(initial_detection=params.initial_detection.at[s].add(1)),
        "one range": params.replace(scenario=arr.replace(defense_range=arr.defense_range.at[s, 0].add(-1))),
        "one vulnerability": params.replace(
            scenario=arr.replace(vulnerable_fixed=arr.vulnerable_fixed.at[s, 2].set(~arr.vulnerable_fixed[s, 2]))
        ),
        "start weights": params.replace(scenario=arr.replace(start_weight=arr.start_weight.at[s].set(1))),
        "visibility": params.replace(scenario=arr.replace(visibility_p=jnp.float32(0.25))),
        "rewards": params.replace(scenario=arr.replace(reward_family=arr.reward_family + 1)),
    }


def test_any_edit_the_game_reads_changes_the_hash():
    env, params = make_scenario(builtin_scenario(3))
    edits = _edits(params)
    hashes = hash_networks(stack([params, *edits.values()]), env.shape)
    original = as_ints(hashes[0])[0]
    changed = as_ints(hashes[1:])
    same = [name for name, h in zip(edits, changed) if h == original]
    assert not same, f"edits left the hash unchanged: {same}"
    assert len(set(changed)) == len(changed), "two different edits hashed equal"


def test_what_the_game_does_not_read_leaves_the_hash():
    """Drawing positions and the horizon are not the network's game (module docstring)."""
    env, params = make_scenario(builtin_scenario(3))
    arr = params.scenario
    variants = [
        params,
        params.replace(scenario=arr.replace(position=arr.position * 3.0 + 1.0)),
        params.replace(max_steps_in_episode=jnp.int32(50), scenario=arr.replace(max_steps=jnp.int32(50))),
    ]
    assert len(set(as_ints(hash_networks(stack(variants), env.shape)))) == 1


def test_switches_of_the_shape_are_hashed():
    env, params = make_scenario(builtin_scenario(3))
    plain = hash_networks(params, env.shape)
    recon = hash_networks(params, env.shape._replace(reconnaissance=True))
    assert as_ints(plain) != as_ints(recon)


def test_hash_inside_jit_equals_host_hash():
    env, params = make_generated(Family(max_layers=2, max_width=3, lateral_p=0.5))
    keys = jax.random.split(jax.random.PRNGKey(4), 16)

    @jax.jit
    def reset_and_hash(keys):
        _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
        return states.network, jax.vmap(env.network_hash)(states.network)

    networks, in_jit = reset_and_hash(keys)
    np.testing.assert_array_equal(np.asarray(in_jit), hash_networks(networks, env.shape))
    first = jax.tree.map(lambda x: x[0], networks)
    with jax.disable_jit():  # the hash's arithmetic op by op, no XLA fusion
        eager = np.asarray(network_hash(first, env.shape))
    np.testing.assert_array_equal(eager, np.asarray(in_jit[0]))


def test_weisfeiler_lehman_collision_is_the_conservative_direction():
    """A 6-cycle and two 3-cycles of servers (every node two neighbours, the same values) are not
    isomorphic, but 1-WL cannot tell them apart: they hash equal, so excluding one excludes both."""
    env, params = make_scenario(builtin_scenario(4))  # 22 nodes: room for six servers in rings
    arr = params.scenario
    servers = np.flatnonzero(np.asarray(arr.role) == SERVER)[:6]

    def ring(cycles):
        reach = np.zeros(np.asarray(arr.reach).shape, bool)
        for cycle in cycles:
            for i, a in enumerate(cycle):
                reach[servers[a], servers[cycle[(i + 1) % len(cycle)]]] = True
        reach |= reach.T
        mask = np.zeros_like(np.asarray(arr.node_mask))
        mask[servers] = True
        zeros = lambda x: jnp.zeros_like(x)  # noqa: E731
        return params.replace(
            scenario=arr.replace(
                reach=jnp.asarray(reach),
                neighbors=jnp.asarray(reach),
                node_mask=jnp.asarray(mask),
                layer=zeros(arr.layer),
                start_node=jnp.int32(-1),
                data_node=jnp.int32(-1),
                start_weight=zeros(arr.start_weight),
                vulnerable_fixed=zeros(arr.vulnerable_fixed),
            ),
            initial_defense=zeros(params.initial_defense),
            initial_attack=zeros(params.initial_attack),
        )

    six, two_triangles = ring([[0, 1, 2, 3, 4, 5]]), ring([[0, 1, 2], [3, 4, 5]])
    hashes = as_ints(hash_networks(stack([six, two_triangles]), env.shape))
    assert hashes[0] == hashes[1]


def test_exclusion_set_and_binary_search():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 2**32, size=(300, 2), dtype=np.uint64).astype(np.uint32)
    rows[:40, 0] = rows[0, 0]  # many rows sharing the first word: the second decides
    members = exclusion_set(rows[:200], rows[:10])  # joined and deduplicated
    assert members.shape == (200, 2) and members.dtype == np.uint32
    assert sorted(as_ints(members)) == as_ints(members)
    probes = np.concatenate([rows, [[0, 0], [2**32 - 1, 2**32 - 1]]]).astype(np.uint32)
    found = np.asarray(jax.jit(jax.vmap(contains, in_axes=(None, 0)))(jnp.asarray(members), jnp.asarray(probes)))
    expected = np.array([h in set(as_ints(members)) for h in as_ints(probes)])
    np.testing.assert_array_equal(found, expected)
    assert found[:200].all() and not found[200:300].any()
    with pytest.raises(ValueError, match="uint32"):
        exclusion_set(np.zeros((2, 2), np.int64))
