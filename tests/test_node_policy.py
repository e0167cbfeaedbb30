"""The node-wise policy (`baselines.node_policy`), both mixers: its id layout, equivariance under node
permutations, any number of nodes, padding invariance (also with the role and depth columns of
`idsjax.node_features` on a real scenario), the legal-action mask, PPO's options for it (and a run
saved before them loading as the attention network), that PPO with `--network nodes` learns on a
small id, and that it trains at least half as fast as the MLP."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from baselines import cli, evaluation, node_policy, ppo
from baselines.errors import UsageError

WIDTH = 3
FEATURES = 4


@pytest.fixture(scope="module", params=node_policy.MIXERS)
def net(request):
    network = node_policy.NodeActorCritic(width=WIDTH, hidden=16, blocks=2, heads=2, mixer=request.param)
    obs = jnp.zeros((1, 5, FEATURES), jnp.int8)
    params = jax.jit(network.init)(jax.random.PRNGKey(0), obs, None)
    return jax.jit(network.apply), params


def _random_obs(key, batch, nodes):
    k1, k2 = jax.random.split(key)
    obs = jax.random.randint(k1, (batch, nodes, FEATURES), 0, 10).astype(jnp.int8)
    mask = jax.random.bernoulli(k2, 0.5, (batch, nodes * WIDTH))
    return obs, mask


def test_logits_are_node_major_and_permute_with_the_nodes(net):
    network, params = net
    obs, mask = _random_obs(jax.random.PRNGKey(1), 3, 6)
    logits, value = network(params, obs, mask)
    assert logits.shape == (3, 6 * WIDTH) and value.shape == (3,)
    perm = np.array([4, 2, 0, 5, 1, 3])
    ids = (perm[:, None] * WIDTH + np.arange(WIDTH)).reshape(-1)  # node-major ids of the permuted nodes
    logits_p, value_p = network(params, obs[:, perm], mask[:, ids])
    np.testing.assert_allclose(logits_p, logits[:, ids], atol=1e-5)
    np.testing.assert_allclose(value_p, value, atol=1e-5)


@pytest.mark.parametrize("nodes", [2, 11])
def test_any_number_of_nodes_and_padding_changes_nothing(net, nodes):
    network, params = net
    obs, mask = _random_obs(jax.random.PRNGKey(nodes), 2, nodes)
    logits, value = network(params, obs, mask)
    assert logits.shape == (2, nodes * WIDTH)
    # Padding rows: all zero, no legal id (as the scenario environments pad to --max-nodes).
    padded_obs = jnp.concatenate([obs, jnp.zeros((2, 7, FEATURES), jnp.int8)], axis=1)
    padded_mask = jnp.concatenate([mask, jnp.zeros((2, 7 * WIDTH), bool)], axis=1)
    logits_pad, value_pad = network(params, padded_obs, padded_mask)
    np.testing.assert_allclose(logits_pad[:, : nodes * WIDTH], logits, atol=1e-5)
    np.testing.assert_allclose(value_pad, value, atol=1e-5)


# The defender (A + 1 ids per node), the attacker with reconnaissance (A + 1); the plain attacker's
# A per node is the PPO test's.
@pytest.mark.parametrize("env_id", ["idsgame-maximal_attack-v3", "idsgame-minimal_defense-v19"])
def test_registered_ids_masked_policy(env_id):
    env, params = idsjax.make(env_id)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    n = env.action_space(params).n
    init, policy = node_policy.actor_critic(env, params, n, 16, 1)
    p = jax.jit(init)(jax.random.PRNGKey(1), obs[None])
    mask = env.legal_action_mask(state, params)[None]
    pi, value = jax.jit(policy)(p, obs[None], mask)
    assert pi.probs.shape == (1, n) and value.shape == (1,)
    np.testing.assert_allclose(float(pi.probs.sum()), 1.0, atol=1e-5)
    assert float(pi.probs[0][~mask[0]].sum()) < 1e-6


def test_local_views_are_refused():
    env, params = idsjax.make("idsgame-minimal_defense-v18")
    with pytest.raises(UsageError, match="one observation row per node"):
        node_policy.actor_critic(env, params, env.action_space(params).n, 16, 1)


@pytest.mark.slow  # a training run (17 s on a cold compile cache); the layout tests above stay in the default suite
def test_ppo_with_the_node_network_learns_v0():
    """v0 (one server, data node): the untrained node policy hacks about 1 game in 50 against
    defend-minimal; 16k steps of PPO make it several times likelier."""
    argv = ["--env", "idsgame-minimal_defense-v0", "--network", "nodes", "--total-timesteps", "16384"]
    config = cli.parse_config(ppo, argv + ["--hidden", "32", "--layers", "1", "--lr", "3e-3", "--chunks", "1"])
    env, params = idsjax.make(config["env"])
    trainer = ppo.make_train(config, env, params)

    def score(runner):
        return evaluation.evaluate(env, params, trainer.act, runner, jax.random.PRNGKey(7), 500, True)

    runner0 = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    before = float(jax.jit(score)(runner0)["hack_probability"])
    runner, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    after = float(jax.jit(score)(runner)["hack_probability"])
    assert after > before + 0.15, (before, after)


CHAIN = "scenarios/examples/chain_with_shortcut.yaml"  # 7 nodes: start, 5 servers, data


@pytest.mark.parametrize("mixer", node_policy.MIXERS)
def test_role_and_depth_columns_keep_the_invariances(mixer):
    """On a real scenario with `idsjax.node_features`' columns: the policy reads them (they change
    its output), permuting the nodes permutes the logits, and padding the network to 12 nodes (rows
    all zero, no legal id, as `--max-nodes` pads) changes no real node's logit nor the value."""
    from idsjax.node_features import NodeFeatures

    def game(max_nodes):
        env, params = idsjax.make_scenario(CHAIN, mode="minimal_defense", max_nodes=max_nodes)
        env = NodeFeatures(env)
        obs, state = env.reset(jax.random.PRNGKey(0), params)
        return env, params, obs[None], env.legal_action_mask(state, params)[None]

    env, params, obs, mask = game(7)
    width = env.action_space(params).n // 7
    network = node_policy.NodeActorCritic(width, hidden=16, blocks=2, heads=2, mixer=mixer)
    p = network.init(jax.random.PRNGKey(1), obs, None)
    apply = jax.jit(network.apply)
    logits, value = apply(p, obs, mask)
    blind, blind_value = apply(p, obs.at[..., -4:].set(0), mask)
    assert float(jnp.abs(blind - logits).max()) > 1e-4 or float(jnp.abs(blind_value - value).max()) > 1e-4

    perm = np.array([6, 3, 0, 5, 1, 4, 2])
    ids = (perm[:, None] * width + np.arange(width)).reshape(-1)
    logits_p, value_p = apply(p, obs[:, perm], mask[:, ids])
    np.testing.assert_allclose(logits_p, logits[:, ids], atol=1e-5)
    np.testing.assert_allclose(value_p, value, atol=1e-5)

    _, _, obs12, mask12 = game(12)
    assert not obs12[0, 7:].any() and not mask12[0, 7 * width :].any()
    logits12, value12 = apply(p, obs12, mask12)
    np.testing.assert_allclose(logits12[:, : 7 * width], logits, atol=1e-5)
    np.testing.assert_allclose(value12, value, atol=1e-5)


def test_ppo_node_options():
    """--node-mixer and its shape reach the network; a run saved before these options existed (no
    `node_mixer` in its configuration) builds the attention network at --hidden and --layers, as it
    was trained."""
    env, params = idsjax.make("idsgame-minimal_defense-v0")
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    n = env.action_space(params).n

    def kernels(config):
        init, _ = ppo.actor_critic(config, env, params, n)
        p = init(jax.random.PRNGKey(0), obs[None])
        return {"/".join(str(k.key) for k in path): leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(p)}

    base = ["--env", "idsgame-minimal_defense-v0", "--network", "nodes"]
    mean = kernels(cli.parse_config(ppo, base + ["--node-hidden", "12", "--node-blocks", "3"]))
    assert mean["params/Dense_0/kernel"][-1] == 12
    assert sum(k.startswith("params/MeanFieldBlock_") and k.endswith("Dense_1/kernel") for k in mean) == 3
    config = cli.parse_config(ppo, base + ["--node-mixer", "attention", "--hidden", "8", "--layers", "1"])
    attention = kernels(config)
    assert "params/Block_0/LayerNorm_0/scale" in attention and attention["params/Dense_0/kernel"][-1] == 8
    legacy = {k: v for k, v in config.items() if not k.startswith("node_")}
    assert kernels(legacy) == attention


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--node-mixer", "gnn"], "--node-mixer"),
        (["--node-hidden", "0"], "--node-hidden must be positive"),
        (["--node-blocks", "-1"], "--node-blocks must be positive"),
        (["--node-hidden", "wide"], "--node-hidden"),
    ],
)
def test_bad_node_options_exit_2(capsys, argv, says):
    with pytest.raises(SystemExit) as err:
        cli.parse_config(ppo, ["--network", "nodes", *argv])
    assert err.value.code == 2
    assert says in capsys.readouterr().err


def test_bad_network_name_exit_2(capsys):
    with pytest.raises(SystemExit) as err:
        cli.parse_config(ppo, ["--network", "gnn"])
    assert err.value.code == 2
    assert "--network" in capsys.readouterr().err
