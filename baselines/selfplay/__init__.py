"""Self-play for two-agent games (the ids `idsgame-vN`, a scenario file, a generated family):
simultaneous PPO for the attacker and the defender in one compiled training loop, with an opponent
pool (Hammar & Stadler, CNSM 2020) and league modes.

Each update plays `num_steps` steps in `num_envs` games split statically into three groups:

    [ attacker learner vs pool defender | learner vs learner | pool attacker vs defender learner ]
      n_pool games                        n_self games         n_pool games

(`n_pool = round(num_envs * pool_share / 2)`; `--mode naive` has no pool games). The attacker learns
from the first two groups, the defender from the last two, each with its own PPO update (clipped
surrogate, GAE) of the same shape. A pool game's opponent is drawn when its episode starts: a
scripted bot with probability `bot_share`, otherwise a snapshot from the other side's pool, which
lives on the device as stacked parameters in a ring buffer of `pool_size` slots (a snapshot of both
players every `snapshot_every` updates; slot 0 holds the initial policies). Per-snapshot parameters
are gathered and the opponents' policies vmapped over the pool games.

Opponent sampling distribution (`--mode`):
    naive  only learner vs learner.
    pool   quality-weighted: softmax(q / pool_temperature), q = the snapshot's win rate against the
           current learner (an exponential moving average tracked on the device).
    pfsp   prioritised fictitious self-play: weight w (1 - w), w = the learner's win rate against
           the snapshot (the "hard-but-beatable" weighting).
    psro   the meta-solver's approximate Nash mixture of the population's payoff matrix M
           (M[i, j]: hack probability of attacker snapshot i vs defender snapshot j; zero-sum, the
           attacker maximises), solved by regret matching+ with linear averaging each update.

M is filled on the device without extra games: when snapshot i is taken, row i (column i) is the
current attacker's (defender's) win-rate estimates against the other side's snapshots and M[i, i]
is the learner-vs-learner rate. The payoff matrix in `payoff_matrix.csv` is measured afresh at the
end with `--payoff-episodes` games per pair.

`--policy autoregressive` factorises each player's action into the node, then the attack/defense
type given the node: p(node) p(type | node), masked stage by stage when `--mask-illegal`.

After training: the final attacker vs the final defender (`eval_*`), each final policy against the two
scripted bots of the other side and against the other side's pool, the population's payoff matrix
(CSV and heatmap), and exploitability: per seed, every responder (a fresh best response,
`baselines.ppo`'s trainer on a single-agent view of the game with the frozen final policy as the
opponent, trained for `--br-timesteps` steps, greedy and sampled; each scripted bot; each pool
member) is scored on the same `--br-eval-episodes` games, and the strongest is replayed on as many
fresh games, which give the value (`run.exploitability`).

    python -m baselines.selfplay --env idsgame-v19
    python -m baselines.selfplay --env idsgame-v7 --mode pfsp --policy autoregressive
    python -m baselines.selfplay --scenario scenarios/examples/office_dmz.yaml     # a user's own network
    python -m baselines.selfplay --generator small --mode pfsp                      # a new network every game

`--scenario FILE [--max-nodes N]` and `--generator NAME [--generator-arg K=V]` name the game as for the
single-agent trainers (`baselines.scenarios`); self-play plays it in the two-agent mode (`--mode` stays
the league mode) and everything below works on it: the league, the evaluation games, the payoff
matrix, exploitability (a generated family's best response trains and plays on fresh networks, as the
policies it attacks did), checkpoints and `--resume`.

The package: `config` (modes, hyperparameters, command line), `policies` (flat and autoregressive
heads), `league` (meta-solver, sampling weights, the pool), `trainer` (the compiled two-player PPO
loop), `best_response`, `evaluation` (every evaluation game through `idsjax.rollout`), `report`
(payoff matrix files) and `run` (the host side: `main`).
"""

from baselines.lazy import lazy_exports

# The package loads its modules when a name is first used (PEP 562), so `python -m baselines.selfplay
# --help` answers before JAX loads (its `__main__` reads the command line first).
_HOMES = {
    "ALGO": "config",
    "ENV_DEFAULTS": "config",
    "HYPERPARAMETERS": "config",
    "MODES": "config",
    "OPPONENT_BOTS": "config",
    "POLICIES": "config",
    "SIDES": "config",
    "Autoregressive": "policies",
    "AutoregressiveActorCritic": "policies",
    "FrozenOpponentEnv": "best_response",
    "FrozenParams": "best_response",
    "League": "league",
    "Policy": "policies",
    "Pool": "league",
    "Runner": "trainer",
    "best_response_steps": "best_response",
    "bot_opponent": "best_response",
    "make_best_response": "best_response",
    "network_opponent": "best_response",
    "bot_actor": "evaluation",
    "check_env_id": "config",
    "dist_probs": "policies",
    "draw_opponents": "league",
    "main": "run",
    "make_evaluate": "evaluation",
    "make_game": "config",
    "make_policy": "policies",
    "make_train": "trainer",
    "masks": "policies",
    "mixed_actor": "evaluation",
    "parse_config": "config",
    "payoff_games": "config",
    "pfsp_weights": "league",
    "play": "evaluation",
    "policy_actor": "evaluation",
    "pool_get": "league",
    "pool_init": "league",
    "pool_insert": "league",
    "pool_sample": "league",
    "quality_weights": "league",
    "resolve_game": "config",
    "sampling_probs": "league",
    "side_policies": "policies",
    "side_policy": "trainer",
    "solve_zero_sum": "league",
    "split_envs": "config",
    "train_best_response": "run",
    "validate": "config",
    "with_probs": "league",
    "write_payoff": "report",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)

__all__ = [
    "ALGO",
    "ENV_DEFAULTS",
    "HYPERPARAMETERS",
    "MODES",
    "OPPONENT_BOTS",
    "POLICIES",
    "SIDES",
    "Autoregressive",
    "AutoregressiveActorCritic",
    "FrozenOpponentEnv",
    "FrozenParams",
    "League",
    "Policy",
    "Pool",
    "Runner",
    "best_response_steps",
    "bot_opponent",
    "make_best_response",
    "network_opponent",
    "bot_actor",
    "check_env_id",
    "dist_probs",
    "draw_opponents",
    "main",
    "make_evaluate",
    "make_game",
    "make_policy",
    "make_train",
    "masks",
    "mixed_actor",
    "parse_config",
    "payoff_games",
    "pfsp_weights",
    "play",
    "policy_actor",
    "pool_get",
    "pool_init",
    "pool_insert",
    "pool_sample",
    "quality_weights",
    "resolve_game",
    "sampling_probs",
    "side_policies",
    "side_policy",
    "solve_zero_sum",
    "split_envs",
    "train_best_response",
    "validate",
    "with_probs",
    "write_payoff",
]
