"""Regenerate `configs.json`, the reference's 179 training configurations as data.

    python -m baselines.reference_grid.extract --git-dir /work/.mirror/Limmen+gym-idsgame/repo            # runs/
    python -m baselines.reference_grid.extract --git-dir /work/.mirror/Limmen+gym-idsgame/repo --publish  # the committed file

Reads every `experiments/training/**/config.json` of gym-idsgame as it stood just before commit
94a83c8 (which deleted the folder) with `git show`, keeps the fields a trainer can use (the rest are
paths, rendering and logging switches), and adds one measured number per environment id: the mean
episode length of uniformly random legal play against the id's scripted opponent (random bots on both
sides of two-agent ids), over 2,048 games of the environment instance of seed 0. That length converts
the reference's episode budgets into environment steps (see `mapping.full_budget_steps`).
Writes `--output` (default runs/reference_grid_configs.json); only `--publish` rewrites the committed
`baselines/reference_grid/configs.json`, which the grid reads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS_FILE = os.path.join(HERE, "configs.json")
DEFAULT_OUTPUT = os.path.join("runs", "reference_grid_configs.json")
REVISION = "94a83c8^"
ROOT = "experiments/training/"

# The reference's AgentType values (gym_idsgame/agents/dao/agent_type.py).
AGENT_TYPES = {
    0: "tabular_q_learning",
    1: "random",
    2: "defend_minimal",
    3: "manual_attack",
    4: "manual_defense",
    5: "attack_maximal",
    6: "dqn",
    7: "reinforce",
    8: "actor_critic",
    9: "ppo",
    10: "ppo_openai",
}
MODES = {0: "attacker", 1: "defender", 5: "both"}  # RunnerMode: who trains

PG_FIELDS = (
    "alpha",
    "alpha_attacker",
    "alpha_defender",
    "gamma",
    "epsilon",
    "epsilon_decay",
    "min_epsilon",
    "eval_epsilon",
    "batch_size",
    "hidden_dim",
    "num_hidden_layers",
    "hidden_activation",
    "optimizer",
    "clip_gradient",
    "max_gradient_norm",
    "ent_coef",
    "vf_coef",
    "gae_lambda",
    "eps_clip",
    "optimization_iterations",
    "mini_batch_size",
    "lr_exp_decay",
    "lr_decay_rate",
    "lr_progress_decay",
    "lr_progress_power_decay",
    "lstm_network",
    "lstm_core",
    "num_lstm_layers",
    "lstm_hidden_dim",
    "lstm_seq_length",
    "ar_policy",
    "opponent_pool",
    "alternating_optimization",
    "alternating_period",
    "critic_loss_fn",
    "state_length",
    "pi_hidden_dim",
    "pi_hidden_layers",
    "vf_hidden_dim",
    "vf_hidden_layers",
    "baselines_in_pool",
    "cnn_feature_extractor",
    "one_hot_obs",
    "normalize_features",
    "merged_ad_features",
)
Q_FIELDS = ("alpha", "gamma", "epsilon", "epsilon_decay", "min_epsilon", "eval_epsilon", "tab_full_state_space")
DQN_FIELDS = (
    "batch_size",
    "hidden_dim",
    "num_hidden_layers",
    "hidden_activation",
    "optimizer",
    "loss_fn",
    "replay_memory_size",
    "replay_start_size",
    "target_network_update_freq",
    "lr_exp_decay",
    "lr_decay_rate",
)
POOL_FIELDS = (
    "pool_prob",
    "pool_increment_period",
    "pool_maxsize",
    "quality_scores",
    "quality_score_eta",
    "initial_quality",
    "head_to_head_period",
)


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


def pick(d: dict | None, fields) -> dict:
    return {k: d[k] for k in fields if d and k in d}


def summarise(path: str, raw: dict) -> dict:
    """The fields of one reference config.json that the mapping reads."""
    agent_cfg = raw.get("pg_agent_config") or raw.get("q_agent_config") or {}
    is_pg = raw.get("pg_agent_config") is not None
    learner = MODES[raw["mode"]]
    seeds = raw.get("random_seeds")
    if not seeds:  # the config runs one seed only
        seeds = [raw.get("random_seed") or agent_cfg.get("random_seed") or 0]
    out = {
        "path": path,
        "group": "/".join(path.split("/")[:2]),
        "env": raw["env_name"],
        "title": raw["title"],
        "mode": raw["mode"],
        "learner": learner,
        "attacker_type": AGENT_TYPES[raw["attacker_type"]],
        "defender_type": AGENT_TYPES[raw["defender_type"]],
        "num_episodes": int(agent_cfg["num_episodes"]),
        "eval_frequency": int(agent_cfg["eval_frequency"]),
        "eval_episodes": int(agent_cfg["eval_episodes"]),
        "seeds": [int(s) for s in seeds],
        "agent_config": pick(agent_cfg, PG_FIELDS if is_pg else Q_FIELDS),
    }
    dqn = (raw.get("q_agent_config") or {}).get("dqn_config")
    if dqn:
        out["dqn_config"] = pick(dqn, DQN_FIELDS)
    if is_pg and agent_cfg.get("opponent_pool"):
        out["opponent_pool_config"] = pick(agent_cfg.get("opponent_pool_config"), POOL_FIELDS)
    return out


def episode_lengths(env_ids, games: int = 2048) -> dict[str, float]:
    """Mean episode length of uniformly random legal play against each id's opponent."""
    from idsjax.trajectories import record

    out = {}
    for i, env_id in enumerate(sorted(env_ids)):
        traj = record(env_id, num_games=games, seed=0)
        out[env_id] = round(float(traj.arrays["length"].mean()), 2)
        print(f"[{i + 1}/{len(env_ids)}] {env_id}: {out[env_id]}", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m baselines.reference_grid.extract", description=__doc__.splitlines()[0])
    p.add_argument("--git-dir", required=True, help="a clone of github.com/Limmen/gym-idsgame (its .git or bare dir)")
    p.add_argument("--output", default=DEFAULT_OUTPUT)
    p.add_argument("--publish", action="store_true", help="write the committed baselines/reference_grid/configs.json")
    args = p.parse_args(argv)
    if args.publish:
        args.output = CONFIGS_FILE
    try:
        files = [
            f
            for f in git(args.git_dir, "ls-tree", "-r", "--name-only", REVISION, ROOT).split()
            if f.endswith("/config.json")
        ]
    except (subprocess.CalledProcessError, FileNotFoundError):
        p.error(f"{args.git_dir!r} is not a gym-idsgame git directory with revision {REVISION}")
    configs = []
    for f in sorted(files):
        raw = json.loads(git(args.git_dir, "show", f"{REVISION}:{f}"))
        configs.append(summarise(f[len(ROOT) : -len("/config.json")], raw))
    lengths = episode_lengths({c["env"] for c in configs})
    for c in configs:
        c["random_play_episode_length"] = lengths[c["env"]]
    data = {
        "source": f"github.com/Limmen/gym-idsgame {REVISION}:{ROOT}**/config.json",
        "episode_length_rule": "mean episode length of uniformly random legal play against the id's "
        "opponent (random bots on both sides of two-agent ids), 2,048 games, env seed 0",
        "configs": configs,
    }
    if os.path.dirname(args.output):
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
    print(f"{len(configs)} configurations -> {args.output}")


if __name__ == "__main__":
    main()
