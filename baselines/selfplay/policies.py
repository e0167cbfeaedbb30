"""The players' policy heads: a flat masked categorical over ids, or autoregressive (node, then
type given the node), each with a value head; and the masks of both sides."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from baselines.networks import MLP, ActorCritic, mask_logits, preprocess


class AutoregressiveActorCritic(nn.Module):
    """p(node) p(type | node): a node head on the observation and a type head on the observation and
    the node (one-hot), evaluated for every node so that log-probabilities and entropy are exact.
    Returns (node logits [B, N], type logits [B, N, W], value [B])."""

    num_nodes: int
    width: int
    hidden: int = 64
    layers: int = 2

    @nn.compact
    def __call__(self, x):
        b, n = x.shape[0], self.num_nodes
        node_logits = MLP(n, self.hidden, self.layers, "tanh", 0.01)(x)
        onehot = jnp.broadcast_to(jnp.eye(n, dtype=x.dtype), (b, n, n))
        xn = jnp.concatenate([jnp.broadcast_to(x[:, None, :], (b, n, x.shape[-1])), onehot], axis=-1)
        type_logits = MLP(self.width, self.hidden, self.layers, "tanh", 0.01)(xn)
        value = MLP(1, self.hidden, self.layers, "tanh", 1.0)(x)
        return node_logits, type_logits, value.squeeze(-1)


class Autoregressive(NamedTuple):
    """The joint distribution of (node, type) over global ids `node * W + type`, sampled in order."""

    node_logits: jax.Array  # [B, N], masked, normalised
    type_logits: jax.Array  # [B, N, W], masked, normalised per node

    @property
    def joint(self) -> distrax.Categorical:
        b = self.node_logits.shape[0]
        return distrax.Categorical(logits=(self.node_logits[..., None] + self.type_logits).reshape(b, -1))

    def sample(self, seed):
        k_node, k_type = jax.random.split(seed)
        node = distrax.Categorical(logits=self.node_logits).sample(seed=k_node)
        types = jnp.take_along_axis(self.type_logits, node[:, None, None], axis=1)[:, 0]
        kind = distrax.Categorical(logits=types).sample(seed=k_type)
        return node * self.type_logits.shape[-1] + kind

    def log_prob(self, action):
        return self.joint.log_prob(action)

    def entropy(self):
        return self.joint.entropy()

    def mode(self):
        return self.joint.mode()

    @property
    def probs(self):
        return jax.nn.softmax(self.joint.logits)


class Policy(NamedTuple):
    network: nn.Module
    dist: Callable  # (params, obs [B, ...], mask [B, A] | None) -> (distribution, value)
    num_actions: int


def make_policy(kind: str, num_nodes: int, width: int, hidden: int, layers: int) -> Policy:
    num_actions = num_nodes * width
    if kind == "flat":
        network = ActorCritic(num_actions, hidden, layers)

        def dist(params, obs, mask):
            logits, value = network.apply(params, preprocess(obs))
            return distrax.Categorical(logits=mask_logits(logits, mask)), value

        return Policy(network, dist, num_actions)

    network = AutoregressiveActorCritic(num_nodes, width, hidden, layers)

    def dist(params, obs, mask):
        node_logits, type_logits, value = network.apply(params, preprocess(obs))
        if mask is not None:
            m = mask.reshape(mask.shape[0], num_nodes, width)
            node_logits = mask_logits(node_logits, m.any(-1))
            type_logits = mask_logits(type_logits, m)
        return Autoregressive(jax.nn.log_softmax(node_logits), jax.nn.log_softmax(type_logits)), value

    return Policy(network, dist, num_actions)


def side_policies(config: dict, env) -> dict[str, Policy]:
    """Both players' heads for `env` (a registered id or a scenario or generated game: every game
    answers `num_ids` and `ids_per_node`), over ids `node * width + type`."""

    def policy(side: str) -> Policy:
        width = env.ids_per_node(side)
        return make_policy(config["policy"], env.num_ids(side) // width, width, config["hidden"], config["layers"])

    return {side: policy(side) for side in ("attacker", "defender")}


def masks(env, env_params, state, enabled: bool) -> dict:
    if not enabled:
        return {"attacker": None, "defender": None}
    return {
        "attacker": jax.vmap(env.attack_mask, in_axes=(0, None))(state, env_params),
        "defender": jax.vmap(env.defense_mask, in_axes=(0, None))(state, env_params),
    }


def dist_probs(d) -> jax.Array:
    """float32[B, ids]: the probabilities a policy's distribution samples ids from (either head)."""
    return d.probs.astype(jnp.float32)
