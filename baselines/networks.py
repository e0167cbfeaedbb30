"""The networks of the trainers: observation preprocessing, masking of logits, MLPs."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

OBS_SCALE = 10.0  # observation values are 0…10 (max value 9, or 10 for "unknown" with reconnaissance)


def preprocess(obs: jax.Array) -> jax.Array:
    """int8 observations of any shape [..., *obs_shape] -> float32 [..., features] (batch dims kept 1)."""
    return obs.reshape(obs.shape[0], -1).astype(jnp.float32) / OBS_SCALE


def mask_logits(logits: jax.Array, mask: jax.Array | None) -> jax.Array:
    return logits if mask is None else jnp.where(mask, logits, -1e9)


def scaled_init(scale: float):
    """Scaled LeCun-normal weights: the variance PureJaxRL's `orthogonal(scale)` gives for a square
    layer. Not orthogonal on purpose: on the CPU (jaxlib 0.10.2) a program holding several batched
    QR decompositions, as `vmap` over seeds of orthogonal initialisers makes, can hang for good
    (seen at 64 seeds)."""
    return nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")


def masked_max(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The largest value over the legal ids (`mask`, or every id when None) along the last axis:
    what Q-learning bootstraps over. Illegal ids are never trained, so their values say nothing."""
    if mask is None:
        return values.max(-1)
    # A state without a legal id (none in idsjax) would give -inf: 0 keeps the target finite.
    return jnp.where(mask.any(-1), jnp.where(mask, values, -jnp.inf).max(-1), 0.0)


def masked_argmax(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The first id of largest value among the legal ids (every id when `mask` is None)."""
    return mask_logits(values, mask).argmax(-1)


class MLP(nn.Module):
    out: int
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        for _ in range(self.layers):
            x = act(nn.Dense(self.hidden, kernel_init=scaled_init(np.sqrt(2)))(x))
        return nn.Dense(self.out, kernel_init=scaled_init(self.out_scale))(x)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs on the flattened observation: (logits, value)."""

    num_actions: int
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        logits = MLP(self.num_actions, self.hidden, self.layers, self.activation, 0.01)(x)
        value = MLP(1, self.hidden, self.layers, self.activation, 1.0)(x)
        return logits, value.squeeze(-1)
