"""A node-wise actor-critic: one set of weights reads the observation node by node, so it plays
networks of any size, including sizes it never saw in training.

Input per node: its observation row (attacker: attack values where visible, the own-node flag,
reconnaissance extras; defender: defense values and detection) and its legal-action bits. The
bits matter: no observation row says which nodes the attacker can reach (a generated network's
attack values start at 0), the legal-action mask does. Node rows are embedded, pass `blocks`
pre-norm transformer blocks (self-attention over the nodes, then a per-node MLP), and give
`width` logits per node, flattened node-major: id `node * width + type`, the layout of both
players' ids (`idsjax.actions`). The value head pools the nodes (mean and max) and reads one number.

Rows that are all zero and have no legal id (padding, and nodes the player neither sees nor can
act on) are left out of attention and pooling, so padding a network with more such rows leaves
the policy and value unchanged. Permuting the nodes permutes the logits the same way (no
positional input): the network has no notion of a node's index, only of what it sees there.
"""

from __future__ import annotations

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from baselines.errors import UsageError
from baselines.networks import OBS_SCALE, mask_logits, scaled_init


def node_inputs(obs: jax.Array, mask: jax.Array | None, width: int) -> tuple[jax.Array, jax.Array]:
    """(features float32[B, N, F + width], present bool[B, N]) from int8 observations [B, N, F] and
    the legal ids [B, N * width] (None: every id legal)."""
    x = obs.astype(jnp.float32) / OBS_SCALE
    b, n = obs.shape[0], obs.shape[1]
    legal = jnp.ones((b, n, width), jnp.float32) if mask is None else mask.reshape(b, n, width).astype(jnp.float32)
    present = (obs != 0).any(-1) | (legal > 0).any(-1)
    return jnp.concatenate([x, legal], axis=-1), present


class Block(nn.Module):
    """Pre-norm transformer block over nodes: attention to the present nodes, then a per-node MLP."""

    hidden: int
    heads: int

    @nn.compact
    def __call__(self, h, present):
        attn_mask = present[:, None, None, :]  # every query attends to the present nodes only
        y = nn.LayerNorm()(h)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.heads, qkv_features=self.hidden, kernel_init=scaled_init(1.0)
        )(y, y, mask=attn_mask)
        h = h + y
        y = nn.LayerNorm()(h)
        y = nn.Dense(2 * self.hidden, kernel_init=scaled_init(np.sqrt(2)))(y)
        y = nn.Dense(self.hidden, kernel_init=scaled_init(1.0))(nn.relu(y))
        return h + y


class NodeActorCritic(nn.Module):
    """`(obs int8[B, N, F], mask bool[B, N * width] | None) -> (logits [B, N * width], value [B])`."""

    width: int  # action ids per node
    hidden: int = 64
    blocks: int = 2
    heads: int = 4

    @nn.compact
    def __call__(self, obs, mask=None):
        x, present = node_inputs(obs, mask, self.width)
        h = nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(x)
        for _ in range(self.blocks):
            h = Block(self.hidden, self.heads)(h, present)
        h = nn.LayerNorm()(h)
        logits = nn.Dense(self.width, kernel_init=scaled_init(0.01))(h)
        weight = present[..., None].astype(jnp.float32)
        mean = (h * weight).sum(1) / jnp.maximum(weight.sum(1), 1.0)
        peak = jnp.where(present[..., None], h, -1e9).max(1)
        peak = jnp.where(present.any(1)[:, None], peak, 0.0)
        pooled = jnp.concatenate([mean, peak], axis=-1)
        v = nn.tanh(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(pooled))
        value = nn.Dense(1, kernel_init=scaled_init(1.0))(v)
        return logits.reshape(obs.shape[0], -1), value.squeeze(-1)


def action_width(env, env_params, num_actions: int) -> int:
    """Action ids per observation row of `env`'s learner, or UsageError where the ids are not laid
    out node by node over the rows (the local views of v14, v15, v18 show slots, not nodes)."""
    shape = env.observation_space(env_params).shape
    spec = getattr(getattr(env, "config", None), "spec", None)  # a registered id's version
    local = bool(getattr(spec, "local_view", False) or getattr(getattr(env, "shape", None), "local_view", False))
    local = local and getattr(env, "learner", "") == "attacker"
    if len(shape) != 2 or local or num_actions % shape[0]:
        raise UsageError(
            f"--network nodes needs one observation row per node and the action ids laid out node by node; "
            f"{getattr(env, 'name', 'this environment')} has observations of shape {tuple(shape)} and "
            f"{num_actions} ids (local views show slots, not nodes); use --network mlp"
        )
    return num_actions // shape[0]


def actor_critic(env, env_params, num_actions: int, hidden: int, blocks: int):
    """(init(key, obs) -> params, policy(params, obs, mask) -> (Categorical over legal ids, value)):
    the node-wise network in the trainers' policy form (`policy_gradient.masked_policy`'s)."""
    network = NodeActorCritic(action_width(env, env_params, num_actions), hidden, blocks, heads_for(hidden))

    def init(key, obs):
        return network.init(key, obs, None)

    def policy(params, obs, mask):
        logits, value = network.apply(params, obs, mask)
        return distrax.Categorical(logits=mask_logits(logits, mask)), value

    return init, policy


def heads_for(hidden: int) -> int:
    """Attention heads: 4 where `hidden` divides by 4, else the largest divisor of `hidden` up to 4."""
    return next(h for h in (4, 3, 2, 1) if hidden % h == 0)
