"""A node-wise actor-critic: one set of weights reads the observation node by node, so it plays
networks of any size, including sizes it never saw in training.

Input per node: its observation row (attacker: attack values where visible, the own-node flag,
reconnaissance extras; defender: defense values and detection; with `idsjax.node_features.NodeFeatures`
also the node's role, start, server or data, and its depth from the start) and its legal-action bits.
The bits matter: no observation row says which nodes the attacker can reach (a generated network's
attack values start at 0), the legal-action mask does. Node rows are embedded, pass `blocks` mixing
layers, and give `width` logits per node, flattened node-major: id `node * width + type`, the layout
of both players' ids (`idsjax.actions`). The value head pools the nodes (mean and max) and reads one
number.

Two mixers. "mean" (`MeanFieldBlock`, PPO's default): each node reads its own row and the mean row
of the present nodes, one `hidden x hidden` product per node and layer; at PPO's defaults (16 units,
one layer) it trains at about half the MLP's speed or better (benchmarks/NOTES.md). "attention"
(`Block`): pre-norm transformer blocks, self-attention over the nodes then a per-node MLP, six such
products per node and block plus the norms: about 20x slower than the MLP at 64 units and 2 blocks,
which is what PPO's runs before `--node-mixer` trained.

Rows that are all zero and have no legal id (padding, and nodes the player neither sees nor can
act on) are left out of attention, means and pooling, so padding a network with more such rows
leaves the policy and value unchanged. Permuting the nodes permutes the logits the same way (no
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


def pool(h: jax.Array, present: jax.Array) -> jax.Array:
    """[B, 2H]: the mean and the max of the present nodes' rows (zeros where none is present)."""
    weight = present[..., None].astype(h.dtype)
    mean = (h * weight).sum(1) / jnp.maximum(weight.sum(1), 1.0)
    peak = jnp.where(present[..., None], h, -1e9).max(1)
    peak = jnp.where(present.any(1)[:, None], peak, 0.0)
    return jnp.concatenate([mean, peak], axis=-1)


class MeanFieldBlock(nn.Module):
    """One residual layer in which each node reads its own row and the mean row of the present nodes:
    `h + relu(W h + U mean(h))`. Per node it costs one `hidden x hidden` product (the mean's is once per
    game), where an attention block costs six and a layer norm's passes (see benchmarks/NOTES.md)."""

    hidden: int

    @nn.compact
    def __call__(self, h, present):
        weight = present[..., None].astype(h.dtype)
        mean = (h * weight).sum(1) / jnp.maximum(weight.sum(1), 1.0)
        ctx = nn.Dense(self.hidden, use_bias=False, kernel_init=scaled_init(np.sqrt(2)))(mean)  # once per game
        return h + nn.relu(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(h) + ctx[:, None])


MIXERS = ("mean", "attention")


class NodeActorCritic(nn.Module):
    """`(obs int8[B, N, F], mask bool[B, N * width] | None) -> (logits [B, N * width], value [B])`.

    `mixer`: how nodes see each other in each of the `blocks`: "mean" (`MeanFieldBlock`, the pooled
    present nodes) or "attention" (`Block`, self-attention over them, `heads` heads)."""

    width: int  # action ids per node
    hidden: int = 64
    blocks: int = 2
    heads: int = 4
    mixer: str = "attention"

    @nn.compact
    def __call__(self, obs, mask=None):
        x, present = node_inputs(obs, mask, self.width)
        h = nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(x)
        for _ in range(self.blocks):
            if self.mixer == "attention":
                h = Block(self.hidden, self.heads)(h, present)
            else:
                h = MeanFieldBlock(self.hidden)(h, present)
        if self.mixer == "attention":
            h = nn.LayerNorm()(h)
        logits = nn.Dense(self.width, kernel_init=scaled_init(0.01))(h)
        v = nn.tanh(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(pool(h, present)))
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


def actor_critic(env, env_params, num_actions: int, hidden: int, blocks: int, mixer: str = "attention"):
    """(init(key, obs) -> params, policy(params, obs, mask) -> (Categorical over legal ids, value)):
    the node-wise network in the trainers' policy form (`policy_gradient.masked_policy`'s)."""
    network = NodeActorCritic(action_width(env, env_params, num_actions), hidden, blocks, heads_for(hidden), mixer)

    def init(key, obs):
        return network.init(key, obs, None)

    def policy(params, obs, mask):
        logits, value = network.apply(params, obs, mask)
        return distrax.Categorical(logits=mask_logits(logits, mask)), value

    return init, policy


def heads_for(hidden: int) -> int:
    """Attention heads: 4 where `hidden` divides by 4, else the largest divisor of `hidden` up to 4."""
    return next(h for h in (4, 3, 2, 1) if hidden % h == 0)
