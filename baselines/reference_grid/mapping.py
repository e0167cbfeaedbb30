"""From a reference configuration (`configs.json`) to an idsjax trainer and its configuration.

`map_config(ref)` decides, for one of the 179 configurations, the trainer (`baselines.tabular_q`,
`dqn`, `reinforce`, `actor_critic`, `ppo` or `selfplay`), the idsjax environment id, the trainer's
hyperparameters as command-line flags, and the list of every way the idsjax run differs from the
reference's. `build_config(mapped, ...)` then resolves them through the trainer's own command-line
parsing (`baselines.cli.parse_config`, `baselines.selfplay.config.parse_config`), so the defaults,
checks and derived fields are the trainer's own.

Rules shared by every configuration:
- Budgets: the reference counts episodes, the trainers environment steps. The full budget in steps is
  `num_episodes x L`, with `L` the id's mean episode length under uniformly random legal play
  (`random_play_episode_length`, measured by `extract.py`). Learnt policies usually play shorter
  games than random ones, so the runs also count the episodes they actually play.
- ε-greedy: the reference multiplies ε by `epsilon_decay` after every episode down to `min_epsilon`;
  the trainers decay linearly. The linear schedule has the same start, reaches the same value the
  exponential one has at the end of the full budget, and takes the same share of the budget to
  reach its floor (`eps_fraction`).
- Every reference agent restricts itself to legal actions, so every run sets `--mask-illegal`.
- The reference learns from raw rewards: `--reward-scale 1`.
- Periods counted in episodes (target-network copies, pool snapshots) become updates through `L`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from baselines.trainers import TRAINER_MODULES

TRAINERS = tuple(TRAINER_MODULES)
AGENT_TRAINER = {
    "tabular_q_learning": "tabular_q",
    "dqn": "dqn",
    "reinforce": "reinforce",
    "actor_critic": "actor_critic",
    "ppo": "ppo",
    "ppo_openai": "ppo",
}
OPPONENT_MODE = {  # the scripted player on the other side -> the idsjax single-agent mode
    "random": {"attacker": "random_defense", "defender": "random_attack"},
    "defend_minimal": {"attacker": "minimal_defense"},
    "attack_maximal": {"defender": "maximal_attack"},
}
ID_LEARNER = {
    "random_defense": "attacker",
    "minimal_defense": "attacker",
    "random_attack": "defender",
    "maximal_attack": "defender",
}
NO_CLIP = 1e6  # a gradient-norm bound no update reaches: the reference did not clip
PPO_MINIBATCH = 64


@dataclass
class Mapped:
    path: str
    trainer: str | None  # None: the configuration does not map (see `differences`)
    env_id: str | None
    learner: str
    status: str  # "same algorithm" | "substitute" | "not mapped"
    flags: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    full_steps: int = 0
    seeds: list[int] = field(default_factory=list)
    eval_episodes: int = 100
    evaluations: int = 1  # evaluations the reference made over its full budget


def parse_env(env_id: str) -> tuple[str | None, int]:
    """('minimal_defense', 7) for idsgame-minimal_defense-v7, (None, 7) for idsgame-v7."""
    m = re.fullmatch(r"idsgame-(?:(\w+)-)?v(\d+)", env_id)
    if not m:
        raise ValueError(f"not a gym-idsgame id: {env_id!r}")
    return m.group(1), int(m.group(2))


def full_budget_steps(ref: dict) -> int:
    return int(math.ceil(ref["num_episodes"] * ref["random_play_episode_length"]))


def epsilon_schedule(a: dict, num_episodes: int) -> tuple[float, float, float]:
    """(start, end, fraction) of the linear schedule standing in for the reference's exponential one."""
    start, decay, floor = (
        float(a.get("epsilon", 1.0)),
        float(a.get("epsilon_decay", 1.0)),
        float(a.get("min_epsilon", 0.0)),
    )
    if decay >= 1.0 or start <= floor:
        return start, start, 1.0
    to_floor = math.log(floor / start) / math.log(decay)  # episodes until ε reaches its floor
    end = max(floor, start * decay**num_episodes)
    return start, end, min(1.0, max(to_floor / max(num_episodes, 1), 1e-6))


def _env(ref: dict, m: Mapped) -> None:
    """The idsjax id: the config's id, a two-agent id turned single-agent when one side is a bot."""
    mode, version = parse_env(ref["env"])
    learner = ref["learner"]
    if learner == "both":
        if mode is not None:
            m.differences.append(
                f"mode 5 (both train) on the single-agent id {ref['env']}: trained as its {ID_LEARNER[mode]} only"
            )
            m.learner = ID_LEARNER[mode]
            m.env_id = ref["env"]
        else:
            m.env_id = ref["env"]
        return
    if mode is None:
        other = ref["defender_type"] if learner == "attacker" else ref["attacker_type"]
        bot_mode = OPPONENT_MODE.get(other, {}).get(learner)
        if bot_mode is None:
            m.differences.append(f"the {learner} trains against a {other} agent that does not learn: not mapped")
            return
        m.env_id = f"idsgame-{bot_mode}-v{version}"
        m.differences.append(
            f"the two-agent id {ref['env']} with a {other} {'defender' if learner == 'attacker' else 'attacker'} "
            f"is the single-agent id {m.env_id}"
        )
        return
    m.env_id = ref["env"]
    if ID_LEARNER[mode] != learner:
        m.learner = ID_LEARNER[mode]
        m.differences.append(
            f"the reference's mode {ref['mode']} trains the {learner}, but in {ref['env']} the {learner} is the "
            f"scripted bot (the reference's run trains nothing useful); idsjax trains the id's learner, the {m.learner}"
        )


def _common(ref: dict, m: Mapped) -> None:
    m.flags += ["--mask-illegal"]
    m.differences.append("budget: episodes converted to environment steps with the random-play episode length")


def _lr(a: dict, learner: str) -> float:
    if learner == "defender" and a.get("alpha_defender") is not None:
        return float(a["alpha_defender"])
    if a.get("alpha_attacker") is not None and learner != "defender":
        return float(a["alpha_attacker"])
    return float(a["alpha"])


def _eps(ref: dict, m: Mapped) -> None:
    s, e, f = epsilon_schedule(ref["agent_config"], ref["num_episodes"])
    m.flags += ["--eps-start", repr(s), "--eps-end", repr(e), "--eps-fraction", repr(f)]
    m.differences.append(
        "ε decays linearly (the reference: multiplicatively per episode) with the same start, "
        "final value and time to its floor"
    )


def _activation(a: dict, m: Mapped, trainer_activation: str) -> None:
    act = str(a.get("hidden_activation", "ReLU")).lower()
    if act != trainer_activation:
        m.differences.append(
            f"hidden activation {a.get('hidden_activation', 'ReLU')}: baselines.{m.trainer} has "
            f"no activation flag and uses {trainer_activation}"
        )


def _lr_decay(a: dict, m: Mapped) -> None:
    if a.get("lr_exp_decay"):
        m.differences.append(
            f"learning-rate decay ×{a.get('lr_decay_rate')} per episode: no flag, the rate is constant"
        )


def _tabular(ref: dict, m: Mapped) -> None:
    """TabularQAgent: Q(0) from a zero table, ε-greedy over the legal ids with ties to the lowest id,
    target `r + γ max Q[s']` over the whole row at every step (game ends included), ε multiplied by
    `epsilon_decay` after every episode. Its table's key: the attacker's node (the defender: one row),
    or with `tab_full_state_space` the whole observation."""
    a = ref["agent_config"]
    full_state = bool(a.get("tab_full_state_space"))
    key = "observation" if full_state else ("single" if m.learner == "defender" else "attacker_node")
    m.flags += [
        "--lr",
        repr(_lr(a, m.learner)),
        "--gamma",
        repr(float(a["gamma"])),
        "--num-envs",
        "1",
        "--num-steps",
        "16",
        "--q-init",
        "0.0",
        "--table-key",
        key,
        "--tie-break",
        "first",
        "--bootstrap",
        "all_always",
    ]
    s, e, f = epsilon_schedule(a, ref["num_episodes"])
    m.flags += ["--eps-start", repr(s), "--eps-end", repr(e), "--eps-fraction", repr(f)]
    if min(s, e) > 0:
        m.flags += ["--eps-schedule", "exponential"]
        m.differences.append(
            "ε is multiplied by a constant factor every environment step, the reference's per-episode "
            "factor spread over the random-play episode length (the reference: once per episode of its "
            "own, so at the pace of the games it plays), with the same start, final value and time to its floor"
        )
    else:
        m.differences.append(
            "ε decays linearly (the reference: multiplicatively per episode) with the same start, "
            "final value and time to its floor"
        )
    m.differences.append(
        "one game updates the table at every step as in the reference, keyed as the reference keys it ("
        + (
            "the whole observation, through a hash into 2^14 rows; the reference enumerates the observations, "
            "its values capped at the largest a state holds, and with a fully observed id appends the "
            "defender's observation to the attacker's"
            if full_state
            else "one row for every state"
            if key == "single"
            else "the attacker's node"
        )
        + ")"
    )
    from idsjax.versions import VERSIONS

    if not VERSIONS[parse_env(m.env_id)[1]].randomize_env:
        m.differences.append(
            "every seed plays the construction-time vulnerability layout of env seed 0 (the reference: "
            "each seed draws its own, which every reset restores; vs_reference gives each seed its "
            "reference layout)"
        )
    if a.get("eval_epsilon"):
        m.differences.append(f"evaluation ε {a['eval_epsilon']}: the trainers evaluate greedily")


def _dqn(ref: dict, m: Mapped) -> None:
    a, d = ref["agent_config"], ref.get("dqn_config", {})
    L = ref["random_play_episode_length"]
    target_updates = max(1, int(round(d.get("target_network_update_freq", 10) * L)))  # 1 step per update
    m.flags += [
        "--lr",
        repr(_lr(a, m.learner)),
        "--gamma",
        repr(float(a["gamma"])),
        "--num-envs",
        "1",
        "--num-steps",
        "1",
        "--gradient-steps",
        "1",
        "--batch-size",
        str(d.get("batch_size", 32)),
        "--buffer-size",
        str(d.get("replay_memory_size", 10000)),
        "--learning-starts",
        str(d.get("replay_start_size", 1000)),
        "--target-update-every",
        str(target_updates),
        "--hidden",
        str(d.get("hidden_dim", 64)),
        "--layers",
        str(d.get("num_hidden_layers", 1)),
        "--no-double-q",
        "--reward-scale",
        "1.0",
        "--max-grad-norm",
        repr(NO_CLIP),
    ]
    _eps(ref, m)
    m.differences.append(
        f"target network copied every {d.get('target_network_update_freq')} episodes -> every {target_updates} steps"
    )
    if d.get("loss_fn", "Huber") != "Huber":
        m.differences.append(f"loss {d.get('loss_fn')}: baselines.dqn uses Huber")
    _activation(d, m, "relu")
    _lr_decay(d, m)


def _pg_common(ref: dict, m: Mapped, activation: str = "tanh") -> None:
    a = ref["agent_config"]
    clip = float(a["max_gradient_norm"]) if a.get("clip_gradient") else NO_CLIP
    if ref["agent"] == "ppo_openai":
        clip = float(a.get("max_gradient_norm", 0.5))  # Stable-Baselines3 always clips
    m.flags += [
        "--lr",
        repr(_lr(a, m.learner)),
        "--gamma",
        repr(float(a["gamma"])),
        "--hidden",
        str(a.get("hidden_dim", 64)),
        "--layers",
        str(a.get("num_hidden_layers", 1)),
        "--max-grad-norm",
        repr(clip),
        "--reward-scale",
        "1.0",
    ]
    _activation(a, m, activation)
    _lr_decay(a, m)
    if a.get("lstm_network") or a.get("lstm_core"):
        m.differences.append("LSTM policy: no recurrent policy in the trainers; a feed-forward one is used")
    if a.get("ar_policy") and m.trainer != "selfplay":
        m.differences.append(
            f"autoregressive (node, then type) policy: baselines.{m.trainer} has no --policy flag "
            "(only baselines.selfplay does); a flat policy is used"
        )
    if a.get("state_length", 1) and int(a.get("state_length", 1)) > 1:
        m.differences.append(f"state_length {a['state_length']} (stacked observations): no flag, one observation")


def _reinforce(ref: dict, m: Mapped) -> None:
    a = ref["agent_config"]
    batch = int(a.get("batch_size", 8))
    m.flags += ["--num-envs", str(batch), "--num-steps", "128", "--ent-coef", repr(float(a.get("ent_coef") or 0.0))]
    _pg_common(ref, m)
    m.differences.append(
        f"a gradient step uses the complete episodes of {batch} games x 128 steps (the reference: "
        f"exactly {batch} episodes); the baseline is a learnt value (the reference standardises "
        "the returns)"
    )


def _actor_critic(ref: dict, m: Mapped) -> None:
    a = ref["agent_config"]
    batch = int(a.get("batch_size", 8))
    m.flags += [
        "--num-envs",
        str(batch),
        "--num-steps",
        "128",
        "--gae-lambda",
        "1.0",
        "--ent-coef",
        repr(float(a.get("ent_coef") or 0.0)),
        "--vf-coef",
        repr(float(a.get("vf_coef") or 0.5)),
    ]
    _pg_common(ref, m)
    m.differences.append(
        f"{batch} games x 128-step rollouts, returns bootstrapped only where a rollout cuts a game "
        "(the reference: Monte-Carlo returns of whole episodes, standardised)"
    )
    if a.get("critic_loss_fn", "MSE") != "MSE":
        m.differences.append(f"critic loss {a.get('critic_loss_fn')}: the trainer's is MSE")


def _ppo_flags(ref: dict, m: Mapped) -> list[str]:
    a = ref["agent_config"]
    if ref["agent"] == "ppo_openai":  # Stable-Baselines3: batch in steps, minibatches of 64
        num_envs, num_steps, n_mb = 16, 128, 16 * 128 // int(a.get("mini_batch_size") or PPO_MINIBATCH)
        m.differences.append(
            f"rollout batch {a.get('batch_size')} steps -> 16 games x 128 steps = 2,048 (minibatches of {2048 // n_mb})"
        )
    else:  # the reference's own PPO: batch in episodes, one minibatch
        num_envs, num_steps, n_mb = max(1, int(a.get("batch_size", 1))), 128, 1
        m.differences.append(f"a batch of {num_envs} games x 128 steps (the reference: {a.get('batch_size')} episodes)")
    flags = [
        "--num-envs",
        str(num_envs),
        "--num-steps",
        str(num_steps),
        "--num-minibatches",
        str(n_mb),
        "--update-epochs",
        str(int(a.get("optimization_iterations") or 10)),
        "--clip-eps",
        repr(float(a.get("eps_clip") or 0.2)),
        "--gae-lambda",
        repr(float(a.get("gae_lambda") or 0.95)),
        "--ent-coef",
        repr(float(a.get("ent_coef") or 0.0)),
        "--vf-coef",
        repr(float(a.get("vf_coef") or 0.5)),
    ]
    if a.get("lr_progress_decay"):
        flags.append("--anneal-lr")
        m.differences.append(
            f"learning rate decayed with power {a.get('lr_progress_power_decay')} of progress: "
            "the trainers anneal linearly"
        )
    else:
        flags.append("--no-anneal-lr")
    return flags


def _ppo(ref: dict, m: Mapped) -> None:
    m.flags += _ppo_flags(ref, m)
    _pg_common(ref, m)


def _selfplay(ref: dict, m: Mapped) -> None:
    a = ref["agent_config"]
    if ref["agent"] not in ("ppo", "ppo_openai"):
        m.status = "substitute"
        m.differences.insert(
            0,
            f"no two-player {ref['agent']} trainer in idsjax: self-play PPO (baselines.selfplay) "
            "trains both sides instead, with the reference's learning rates, γ and network",
        )
    if ref["agent"] in ("tabular_q_learning", "dqn"):
        m.flags += [
            "--lr",
            repr(float(a.get("alpha", 1e-3))),
            "--gamma",
            repr(float(a["gamma"])),
            "--num-envs",
            "32",
            "--num-steps",
            "32",
            "--mask-illegal",
            "--reward-scale",
            "1.0",
            "--mode",
            "naive",
            "--br-timesteps",
            "0",
            "--payoff-episodes",
            "10",
        ]
        if "dqn_config" in ref:
            m.flags += [
                "--hidden",
                str(ref["dqn_config"].get("hidden_dim", 64)),
                "--layers",
                str(ref["dqn_config"].get("num_hidden_layers", 1)),
            ]
        m.differences.append("the reference's two Q-learners never share a pool: --mode naive")
        return
    m.flags += (
        _ppo_flags(ref, m)
        if ref["agent"] in ("ppo", "ppo_openai")
        else [
            "--num-envs",
            "32",
            "--num-steps",
            "64",
            "--num-minibatches",
            "1",
            "--update-epochs",
            "1",
            "--ent-coef",
            repr(float(a.get("ent_coef") or 0.0)),
        ]
    )
    _pg_common(ref, m)
    if a.get("alpha_attacker") != a.get("alpha_defender") and a.get("alpha_defender") is not None:
        m.differences.append(
            f"learning rates {a.get('alpha_attacker')} (attacker) and {a.get('alpha_defender')} "
            "(defender): baselines.selfplay has one --lr; the attacker's is used"
        )
    m.flags += [
        "--policy",
        "autoregressive" if a.get("ar_policy") else "flat",
        "--br-timesteps",
        "0",
        "--payoff-episodes",
        "10",
        "--mask-illegal",
    ]
    pool = ref.get("opponent_pool_config")
    if a.get("opponent_pool") and pool:
        L = ref["random_play_episode_length"]
        m.flags += ["--mode", "pool", "--pool-share", repr(float(pool.get("pool_prob", 0.5)))]
        m.differences.append(
            f"opponent pool: probability {pool.get('pool_prob')} -> --pool-share, a snapshot every "
            f"{pool.get('pool_increment_period')} episodes (~{pool.get('pool_increment_period', 0) * L:.0f} steps, "
            f"converted per run to updates), ring buffer of 8 (the reference keeps {pool.get('pool_maxsize')}); "
            + (
                "quality-weighted sampling as in the reference"
                if pool.get("quality_scores")
                else "the reference samples uniformly; --mode pool weights by quality (no uniform mode)"
            )
        )
        if a.get("baselines_in_pool"):
            m.differences.append(
                "the reference's pool also holds the scripted bots: --bot-share stays 0 (no flag "
                "that seeds the pool with bots)"
            )
    else:
        m.flags += ["--mode", "naive"]
    if a.get("alternating_optimization"):
        m.differences.append(
            f"alternating optimisation every {a.get('alternating_period')} episodes: no flag; "
            "baselines.selfplay updates both sides every update"
        )


BUILDERS = {
    "tabular_q": _tabular,
    "dqn": _dqn,
    "reinforce": _reinforce,
    "actor_critic": _actor_critic,
    "ppo": _ppo,
    "selfplay": _selfplay,
}


assert set(BUILDERS) == set(TRAINERS), "every trainer of baselines.trainers has a builder"


def map_config(ref: dict) -> Mapped:
    """The idsjax trainer, id, flags and differences of one reference configuration."""
    agent_type = ref["attacker_type"] if ref["learner"] != "defender" else ref["defender_type"]
    ref = {**ref, "agent": agent_type}
    m = Mapped(
        path=ref["path"],
        trainer=None,
        env_id=None,
        learner=ref["learner"],
        status="same algorithm",
        seeds=list(ref["seeds"]),
        eval_episodes=int(ref["eval_episodes"]),
        full_steps=full_budget_steps(ref),
        evaluations=max(1, ref["num_episodes"] // max(1, ref["eval_frequency"])),
    )
    if agent_type not in AGENT_TRAINER:
        m.status = "not mapped"
        m.differences.append(f"the learner is a {agent_type} player, not a learning agent")
        return m
    _env(ref, m)
    if m.env_id is None:
        m.status = "not mapped"
        return m
    m.trainer = "selfplay" if m.learner == "both" else AGENT_TRAINER[agent_type]
    _common(ref, m) if m.trainer != "selfplay" else m.differences.append(
        "budget: episodes converted to environment steps with the random-play episode length"
    )
    BUILDERS[m.trainer](ref, m)
    if ref["num_episodes"] >= 10**8:
        m.differences.append("num_episodes 1e8 means 'until stopped' in the reference: the full budget is nominal")
    return m


MAPPINGS = ("faithful", "parallel")
ON_POLICY = ("reinforce", "actor_critic", "ppo", "selfplay")
MIN_ROLLOUT = 8  # the parallel mapping's shortest rollout: shorter ones would bootstrap nearly every step


def parallel(m: Mapped, factor: int) -> Mapped:
    """The parallel mapping of an on-policy configuration: the same environment-step budget spent over
    `factor` times as many games per update (the JAX way: thousands of games per update), in place of
    the reference's few. `map_config` is the faithful mapping; this one is documented as a difference.

    Actor-critic, PPO and self-play keep every update's samples, minibatches and epochs, so the number
    of updates and of gradient steps, and each gradient step's batch, stay those of the faithful
    mapping: the games are `k` times as many and their rollouts `k` times shorter (k = `factor`, at most
    the rollout over `MIN_ROLLOUT`), so returns bootstrap from the value `k` times as often. REINFORCE's
    Monte-Carlo returns need rollouts as long as a game (102 steps), so it keeps its rollout and takes
    `factor` times the games per update instead: `factor` times fewer gradient steps, each on `factor`
    times the samples. Tabular Q and DQN learn off-policy from one game's steps and are left as they are."""
    if m.trainer not in ON_POLICY:
        return m
    if factor < 1:
        raise ValueError(f"the parallel factor must be at least 1, got {factor}")
    flags = list(m.flags)
    envs, steps = int(_flag(flags, "--num-envs", 32)), int(_flag(flags, "--num-steps", 32))
    if m.trainer == "reinforce":
        _set_flag(flags, "--num-envs", str(envs * factor))
        note = (
            f"parallel mapping: {envs * factor} games x {steps} steps per update in place of {envs} x {steps}, "
            f"so {factor}x fewer gradient steps, each on {factor}x the samples (REINFORCE's returns need "
            "whole games, so the rollout keeps its length)"
        )
    else:
        k = max(d for d in range(1, min(factor, max(1, steps // MIN_ROLLOUT)) + 1) if steps % d == 0)
        if k == 1:
            return m
        _set_flag(flags, "--num-envs", str(envs * k))
        _set_flag(flags, "--num-steps", str(steps // k))
        note = (
            f"parallel mapping: {envs * k} games x {steps // k} steps per update in place of {envs} x {steps} "
            "(the same samples, minibatches, epochs and gradient steps per update; rollouts "
            f"{k}x shorter, so returns bootstrap from the value {k}x as often)"
        )
    return replace(m, flags=flags, differences=[*m.differences, note])


def trainer_module(name: str):
    import importlib

    return importlib.import_module(f"baselines.{name}")


def snapshot_every(ref: dict, steps_per_update: int) -> int:
    pool = ref.get("opponent_pool_config") or {}
    period = pool.get("pool_increment_period", 50) * ref["random_play_episode_length"]
    return max(1, int(round(period / steps_per_update)))


def build_config(m: Mapped, ref: dict, total_timesteps: int, num_seeds: int, chunks: int, output_dir: str) -> dict:
    """The trainer's resolved configuration, through its own command-line parsing."""
    if m.trainer is None:
        raise ValueError(f"{m.path} does not map: {'; '.join(m.differences)}")
    flags = list(m.flags)
    spu = int(_flag(flags, "--num-envs", 32)) * int(_flag(flags, "--num-steps", 32))
    if total_timesteps < spu:  # a run is at least one update
        m.differences.append(f"the budget is raised to one update ({spu} steps)")
        total_timesteps = spu
    if m.trainer == "dqn":  # capped runs: replay start and target period shrink to fit the budget
        start, target = int(_flag(flags, "--learning-starts", 0)), int(_flag(flags, "--target-update-every", 1))
        fit_start, fit_target = min(start, total_timesteps // 2), min(target, max(1, total_timesteps // 10))
        if (fit_start, fit_target) != (start, target):
            m.differences.append(
                f"this budget: replay start {start} -> {fit_start} steps, target copy every "
                f"{target} -> {fit_target} steps (the trainer needs both within the run)"
            )
            _set_flag(flags, "--learning-starts", str(fit_start))
            _set_flag(flags, "--target-update-every", str(fit_target))
    common = [
        "--env",
        m.env_id,
        "--total-timesteps",
        str(total_timesteps),
        "--num-seeds",
        str(num_seeds),
        "--eval-episodes",
        str(m.eval_episodes),
        "--chunks",
        str(chunks),
        "--output-dir",
        output_dir,
        "--no-progress",
    ]
    if m.trainer == "selfplay":
        from baselines.selfplay.config import parse_config

        config = parse_config(flags + common)
        spu = config["num_envs"] * config["num_steps"]
        if config["mode"] != "naive":
            config["snapshot_every"] = snapshot_every(ref, spu)
        return config
    from baselines.cli import parse_config

    return parse_config(trainer_module(m.trainer), flags + common)


def _flag(flags: list[str], name: str, default):
    return flags[flags.index(name) + 1] if name in flags else default


def _set_flag(flags: list[str], name: str, value: str) -> None:
    flags[flags.index(name) + 1] = value
