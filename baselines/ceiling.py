"""The best hack probability any attacker can reach against defend-minimal, computed exactly.

    python -m baselines.ceiling                                   # idsgame-minimal_defense-v7, env seed 0
    python -m baselines.ceiling --env idsgame-minimal_defense-v2 --horizon 4 5 6

Why it can be computed: defend-minimal's choice depends only on the defense and detection values, and
only the defender changes those. Its raise sequence is therefore a random process that no attack can
influence, and in a version without full observation or reconnaissance the attacker learns about it only
through the outcome of its own attacks (moved, stayed, detected). The attacker's problem is then a
finite decision tree over those outcomes: enumerate every defender sequence of the first `H` steps with
its probability, and search every attacker decision (every legal attack id and one illegal id) against
the sequences still consistent with what the attacker has seen.

The search bounds the optimum from both sides:
- lower: the best probability of hacking within `H` steps (achievable by a real policy);
- upper: the same, plus, for every game still running after `H` steps, the most it could still win.
  Defense and detection values never fall and an attack raises its value by one, so from then on
  node `n` costs at least `f_n = min_k max(0, defense[n,k] - attack[n,k])` failed attacks, each
  survived with probability at most `1 - detection[n]/10`; the best path to the data node bounds
  the rest of the game.
Attack types of one node whose attack and defense values agree in every consistent sequence are
interchangeable, so one of them stands for all (an exact reduction). The enumeration follows
`idsjax.bots.defend_minimal` (spec §8.2, Q12), which the parity tests pin to the reference.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import numpy as np

import idsjax
from idsjax.versions import Mode

NOOP = (-1, -1)


@functools.cache
def _defend_minimal_choice():
    import jax

    from idsjax.bots import defend_minimal_choice

    return jax.jit(defend_minimal_choice)


def defender_moves(defense: np.ndarray, detection: np.ndarray, defendable: np.ndarray, a: int):
    """[(probability, node, type)] of defend-minimal's next move; type `a` raises detection (§8.2).
    The move is the bot's own decision (`idsjax.bots.defend_minimal_choice`, which the game plays and
    the parity tests pin to the reference); its probabilities are exact fractions here."""
    action, first, ties = (np.asarray(x) for x in _defend_minimal_choice()(defense, detection, defendable))
    later = [int(i) for i in np.flatnonzero(ties)]
    chosen = [(1.0 / len(later), i) for i in later] if len(later) > 1 else [(1.0, int(first))]
    return [(p, i, int(action[i]) % (a + 1)) for p, i in chosen]


def defender_sequences(defense, detection, defendable, a: int, max_value: int, horizon: int):
    """Every defense history of `horizon` steps: [(probability, [(defense, detection) after step t])]."""
    out = []

    def grow(prob, de, det, seq):
        if len(seq) == horizon:
            out.append((prob, seq))
            return
        for p, node, typ in defender_moves(de, det, defendable, a):
            de2, det2 = de.copy(), det.copy()
            if typ == a:
                det2[node] = min(det2[node] + 1, max_value)
            else:
                de2[node, typ] = min(de2[node, typ] + 1, max_value)
            grow(prob * p, de2, det2, seq + [(de2, det2)])

    grow(1.0, defense.copy(), detection.copy(), [])
    return out


def solve(env_id: str, env_seed: int, horizon: int) -> dict:
    env, params = idsjax.make(env_id, seed=env_seed)
    cfg = env.config
    if cfg.mode is not Mode.MINIMAL_DEFENSE:
        raise ValueError(f"{env_id}: the ceiling is computed against defend-minimal (idsgame-minimal_defense-vN)")
    spec = cfg.spec
    if spec.randomize_env or spec.random_start or spec.fully_observed or spec.reconnaissance or spec.local_view:
        raise ValueError(
            f"{env_id}: only versions with a fixed layout, a fixed start and the partial attack view have "
            "an attacker who learns about the defense only from its own attacks (v0-v9)"
        )
    net = cfg.network
    row = search(
        params.initial_defense,
        params.initial_detection,
        params.initial_attack,
        net.attack_reachable,
        net.defendable,
        int(net.data_node),
        int(net.start_node),
        int(params.max_value),
        horizon,
    )
    return {"env": env_id, "env_seed": env_seed, **row}


def search(
    defense0, detection0, attack0, reach, defendable, data_node: int, start_node: int, max_value: int, horizon: int
):
    """The bounds of `solve` on a network given as arrays (a registered id's or a scenario's, e.g. for
    `baselines.evaluate`): initial values defense int[N, A], detection int[N], attack int[N, A], the
    attack edges bool[N, N] (`reach[p, q]`: from p the attacker may attack q), the defendable nodes
    bool[N], the data and start nodes and the value cap."""
    defense0 = np.asarray(defense0, np.int64)
    detection0 = np.asarray(detection0, np.int64)
    attack0 = np.asarray(attack0, np.int64)
    reach = np.asarray(reach, bool)
    defendable = np.asarray(defendable, bool)
    a = defense0.shape[1]
    sequences = defender_sequences(defense0, detection0, defendable, a, max_value, horizon)
    probs = [p for p, _ in sequences]
    de = np.stack([np.stack([d for d, _ in seq]) for _, seq in sequences])  # [S, H, N, A]
    det = np.stack([np.stack([d for _, d in seq]) for _, seq in sequences])  # [S, H, N]

    @functools.cache
    def value(t: int, position: int, attack: tuple, alive: tuple) -> tuple[float, float]:
        """(lower, upper) probability mass of a hack from step `t` on; `alive`: ((sequence, mass), ...)."""
        att = np.asarray(attack).reshape(defense0.shape)
        ids = np.array([s for s, _ in alive])
        masses = np.array([m for _, m in alive])
        if t == horizon:
            return 0.0, float((masses * rest_of_game(position, att, ids)).sum())
        best_lo, best_hi = 0.0, 0.0
        for node, typ in candidate_attacks(t, position, att, ids) + [NOOP]:
            if (node, typ) == NOOP:  # an illegal attack: time passes, nothing else happens
                lo, hi = value(t + 1, position, attack, alive)
            else:
                before = att[node, typ]
                after = min(before + 1, max_value)
                att2 = att.copy()
                att2[node, typ] = after
                attack2 = tuple(att2.ravel().tolist())
                success = after > de[ids, t, node, typ]
                survive = 1.0 - det[ids, t, node] / 10.0
                lo = hi = 0.0
                if success.any():
                    moved = tuple(zip(ids[success].tolist(), masses[success].tolist()))
                    if node == data_node:
                        won = float(masses[success].sum())
                        lo, hi = lo + won, hi + won
                    else:
                        l2, h2 = value(t + 1, node, attack2, moved)
                        lo, hi = lo + l2, hi + h2
                if (~success).any():
                    keep = ~success & (survive > 0)
                    stayed = tuple(zip(ids[keep].tolist(), (masses[keep] * survive[keep]).tolist()))
                    if stayed:
                        l2, h2 = value(t + 1, position, attack2, stayed)
                        lo, hi = lo + l2, hi + h2
            best_lo, best_hi = max(best_lo, lo), max(best_hi, hi)
        return best_lo, best_hi

    def rest_of_game(position, att, ids):
        """float[len(ids)]: an upper bound on the hack probability after the horizon, per sequence."""
        d = de[ids, horizon - 1]  # [S, N, A]: the defense can only grow from here
        failures = np.maximum(d - att[None], 0).min(axis=2)  # [S, N]
        survive = np.clip(1.0 - det[ids, horizon - 1] / 10.0, 0.0, 1.0) ** failures  # [S, N]
        best = np.zeros_like(survive)  # best[s, n]: bound on hacking from position n
        data = data_node
        for _ in range(len(reach)):  # max-product Bellman iteration; paths are at most N long
            via = np.where(np.arange(len(reach)) == data, 1.0, best)  # reaching data is the hack
            step = np.where(reach[None], survive[:, None, :] * via[:, None, :], 0.0).max(axis=2)
            best = np.maximum(best, step)
        return best[:, position]

    def candidate_attacks(t, position, att, ids):
        """Legal attacks, one per class of interchangeable types at a node."""
        out = []
        for node in np.flatnonzero(reach[position]):
            seen = set()
            for typ in range(a):
                signature = (att[node, typ], de[ids, t:, node, typ].tobytes())
                if signature not in seen:
                    seen.add(signature)
                    out.append((int(node), typ))
        return out

    start = time.perf_counter()
    alive = tuple((i, probs[i]) for i in range(len(sequences)))
    lower, upper = value(0, start_node, tuple(attack0.ravel().tolist()), alive)
    return {
        "horizon": horizon,
        "defender_sequences": len(sequences),
        "lower": round(lower, 6),
        "upper": round(upper, 6),
        "exact": abs(upper - lower) < 1e-9,
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m baselines.ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--env", default="idsgame-minimal_defense-v7")
    p.add_argument("--env-seed", type=int, default=0)
    p.add_argument(
        "--horizon",
        type=int,
        nargs="+",
        default=[4, 5],
        help="steps searched; the bounds tighten as it grows, and the search time with it "
        "(v7: 1 s at 4, 10 s at 5, 2 min at 7)",
    )
    args = p.parse_args(argv)
    if args.env not in idsjax.registered_envs():
        p.error(f"unknown id {args.env!r}")
    if any(h <= 0 for h in args.horizon):
        p.error("--horizon must be positive")
    rows = []
    for h in args.horizon:
        try:
            row = solve(args.env, args.env_seed, h)
        except ValueError as e:
            p.error(str(e))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
