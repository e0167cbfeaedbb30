"""`python -m baselines.reference_grid.vs_reference`: the reference's own tabular Q-learning beside idsjax.

    python -m baselines.reference_grid.vs_reference --episodes 1500 --num-seeds 5

Runs gym-idsgame 1.0.13's `TabularQAgent` (the reference's trainer; its import of the video monitor
`gym_idsgame.envs.rendering.video.idsgame_monitor` is stubbed, and `torch`, which it imports only to seed
itself, is stubbed when missing) on a few of the grid's tabular configurations with a short budget of
`--episodes` episodes and the reference's seeds, then the same configurations in idsjax as the grid
maps them (`idsjax_runs`), each seed on the reference run's own construction-time layout, with the
same number of environment steps per seed as the reference's runs took on average. Writes
`vs_reference.json` (and a figure) for the report: final evaluation hack probability mean ± SE per
side, whether they are the same by an equivalence test with a stated margin (`sections.equivalence`:
two one-sided Welch t-tests on the seeds' final values, margin ±0.05, α = 0.05; or shown different, or
neither), the learning curves and the wall-time ratio. They go to
`<output-dir>/results/reference_grid/` (default output dir runs/reference_grid_report, where the
report looks first); `--publish` writes the committed `baselines/results/reference_grid/`. Not
imported by anything that runs by default.

    python -m baselines.reference_grid.vs_reference --rescore [--publish]

re-judges an existing `vs_reference.json` (the output folder's, else the committed one) from the
per-seed values it holds, without training: its rows' verdicts and the note's rule sentence follow the
current rule.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
import types

import numpy as np

from baselines.reference_grid import data
from baselines.reference_grid.mapping import parse_env
from baselines.reference_grid.report import DEFAULT_OUTPUT, add_destination_arguments, readable, results_dir
from baselines.reference_grid.sections import equivalence, equivalence_sentence, note_without_rule

DEFAULT_PATHS = (
    "v0/minimal_defense/tabular_q_learning",
    "v0/random_defense/tabular_q_learning",
    "v2/minimal_defense/tabular_q_learning",
    "v3/random_defense/tabular_q_learning",
)
FIGURE = "vs_reference.png"
MODE_CLASS = {
    "minimal_defense": "MinimalDefense",
    "random_defense": "RandomDefense",
    "maximal_attack": "MaximalAttack",
    "random_attack": "RandomAttack",
}


def _stub_imports() -> None:
    """What TabularQAgent imports but a training run without video never uses. A stub `torch` stays in
    `sys.modules` only while the agent's modules import (`_import_agent` removes it): libraries that
    probe `sys.modules["torch"]`, such as scipy's array-API helpers, must not find it."""
    name = "gym_idsgame.envs.rendering.video.idsgame_monitor"
    if name not in sys.modules:
        mod = types.ModuleType(name)
        mod.IdsGameMonitor = None  # only used when config.video is set
        sys.modules[name] = mod
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = types.ModuleType("torch")
        torch.manual_seed = lambda seed: None  # QAgent seeds torch; the tabular agent never uses it
        sys.modules["torch"] = torch


def _import_agent():
    had_torch = "torch" in sys.modules
    _stub_imports()
    try:
        from gym_idsgame.agents.training_agents.q_learning.q_agent_config import QAgentConfig
        from gym_idsgame.agents.training_agents.q_learning.tabular_q_learning.tabular_q_agent import TabularQAgent
    finally:
        if not had_torch and getattr(sys.modules.get("torch"), "__file__", None) is None:
            sys.modules.pop("torch", None)  # our stub: the imported modules keep their reference
    return QAgentConfig, TabularQAgent


def reference_run(ref: dict, episodes: int, eval_every: int, seed: int) -> dict:
    """One seed of the reference's TabularQAgent: eval curve, final eval hack probability, steps, seconds."""
    import warnings

    warnings.simplefilter("ignore")
    QAgentConfig, TabularQAgent = _import_agent()
    from gym_idsgame.envs import idsgame_env

    mode, version = parse_env(ref["env"])
    np.random.seed(seed)
    random.seed(seed)
    env = getattr(idsgame_env, f"IdsGame{MODE_CLASS[mode]}V{version}Env")(idsgame_config=None)
    steps = [0]
    inner_step = env.step

    def counting_step(action):
        steps[0] += 1
        return inner_step(action)

    env.step = counting_step
    init = env.idsgame_config.game_config.initial_state
    layout = [
        np.array(x, copy=True)
        for x in (init.attack_values, init.defense_values, init.defense_det, init.reconnaissance_state)
    ]
    a = ref["agent_config"]
    logger = logging.getLogger("reference_tabular_q")
    logger.setLevel(logging.WARNING)
    cfg = QAgentConfig(
        gamma=float(a["gamma"]),
        alpha=float(a["alpha"]),
        epsilon=float(a.get("epsilon", 1.0)),
        epsilon_decay=float(a["epsilon_decay"]),
        min_epsilon=float(a["min_epsilon"]),
        eval_episodes=int(ref["eval_episodes"]),
        train_log_frequency=100,
        eval_log_frequency=1,
        num_episodes=episodes,
        eval_frequency=eval_every,
        video=False,
        gifs=False,
        render=False,
        eval_render=False,
        eval_sleep=0.0,
        attacker=ref["learner"] == "attacker",
        defender=ref["learner"] == "defender",
        save_dir=None,
        checkpoint_freq=10**9,
        random_seed=seed,
    )
    cfg.logger = logger
    t0 = time.perf_counter()
    agent = TabularQAgent(env, cfg)
    # the agent turns on attack statistics, which the environment writes to its save_dir (None here)
    env.save_attack_data = lambda checkpoint=True: None
    env.save_trajectories = lambda checkpoint=True: None
    eval_steps = [0]  # steps of the evaluation games, counted apart from the training steps
    evaluations = []  # hack probability of every evaluation, the unlogged end-of-training one included
    inner_eval = agent.eval

    def eval_counting(train_episode, log=True):
        before = steps[0]
        try:
            return inner_eval(train_episode, log)
        finally:
            eval_steps[0] += steps[0] - before
            evaluations.append(agent.num_eval_hacks / max(1, agent.num_eval_games))

    agent.eval = eval_counting
    with open(os.devnull, "w") as devnull:  # its tqdm bars
        err, sys.stderr = sys.stderr, devnull
        try:
            agent.train()
        finally:
            sys.stderr = err
    seconds = time.perf_counter() - t0
    hp = list(agent.eval_result.hack_probability)
    return {
        "curve": [float(x) for x in evaluations],
        "final": float(evaluations[-1]),
        "last_logged": float(hp[-1]),
        "seconds": seconds,
        "train_steps": max(1, steps[0] - eval_steps[0]),
        "layout": layout,
    }


def idsjax_runs(ref: dict, steps: int, seeds: list[int], layouts: list, evaluations: int) -> dict:
    """idsjax's mapped trainer on `ref`, every seed on the construction-time layout its reference run
    had (`layouts[i]`: attack, defense, detection and reconnaissance arrays), all seeds in one program:
    the evaluation hack probability per seed before training and after each `1 / evaluations` of it,
    and the seconds (compilation included)."""
    import functools

    import jax
    import jax.numpy as jnp

    import idsjax
    from baselines.evaluation import evaluate
    from baselines.reference_grid.mapping import build_config, map_config, trainer_module

    t0 = time.perf_counter()
    m = map_config(ref)
    config = build_config(m, ref, steps, len(seeds), 1, tempfile.mkdtemp(prefix="vs_reference_"))
    env, base = idsjax.make(m.env_id)
    params = jax.tree.map(lambda *x: jnp.stack(x), *[env.with_initial_state(base, *lay) for lay in layouts])
    module = trainer_module(m.trainer)

    def trainer(p):
        return module.make_train(config, env, p)

    num_updates = trainer(base).num_updates

    @functools.partial(jax.jit, static_argnums=2)
    @functools.partial(jax.vmap, in_axes=(0, 0, None))
    def chunk(runner, p, length: int):
        t = trainer(p)
        return jax.lax.scan(lambda r, _: (t.update(r)[0], None), runner, None, length)[0]

    @jax.jit
    @jax.vmap
    def hack_probability(runner, p, key):
        t = trainer(p)
        return evaluate(env, p, t.act, runner, key, config["eval_episodes"], config["mask_illegal"])["hack_probability"]

    rngs = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    runner = jax.jit(jax.vmap(lambda k, p: trainer(p).init(k)))(rngs, params)
    bounds = [round(i * num_updates / evaluations) for i in range(evaluations + 1)]
    curve = []
    for i, (lo, hi) in enumerate(zip([0] + bounds[:-1], bounds)):
        if hi > lo:
            runner = chunk(runner, params, hi - lo)
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), 1_000_003 + i) for s in seeds])
        curve.append([float(x) for x in jax.device_get(hack_probability(runner, params, keys))])
    return {
        "curve": curve,  # [evaluation][seed]
        "final": curve[-1],
        "seconds": time.perf_counter() - t0,
        "steps_per_seed": num_updates * config["num_envs"] * config["num_steps"],
    }


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m baselines.reference_grid.vs_reference", description=__doc__.splitlines()[0]
    )
    p.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS), help="tabular configurations to compare")
    p.add_argument("--episodes", type=int, default=1500, help="training episodes per seed of the reference's runs")
    p.add_argument("--evaluations", type=int, default=5, help="evaluations during the reference's training")
    p.add_argument("--num-seeds", type=int, default=5)
    add_destination_arguments(p, DEFAULT_OUTPUT)
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-judge the existing vs_reference.json from its per-seed values (no training) and rewrite it",
    )
    args = p.parse_args(argv)
    if args.rescore:
        return rescore(args)
    configs = {c["path"]: c for c in data.load_configs()}
    bad = [
        x
        for x in args.paths
        if x not in configs
        or configs[x]["attacker_type"] != "tabular_q_learning"
        and configs[x]["defender_type"] != "tabular_q_learning"
        or configs[x]["learner"] == "both"
    ]
    if bad:
        p.error(f"not a single-agent tabular configuration of the grid: {', '.join(bad)}")
    if args.episodes <= 0 or args.evaluations <= 0 or args.num_seeds <= 0:
        p.error("--episodes, --evaluations and --num-seeds must be positive")
    # the equivalence test (sections.equivalence) compares the seeds' final values: one seed has no spread
    few = [x for x in args.paths if len(configs[x]["seeds"][: args.num_seeds]) < 2]
    if few:
        p.error(
            "the equivalence test needs at least two seeds a side; "
            + (f"{', '.join(few)} has fewer in the reference" if args.num_seeds >= 2 else "give --num-seeds 2 or more")
        )
    rows = []
    for path in args.paths:
        ref = configs[path]
        seeds = ref["seeds"][: args.num_seeds]
        eval_every = max(1, args.episodes // args.evaluations)
        runs = []
        for s in seeds:
            r = reference_run(ref, args.episodes, eval_every, s)
            runs.append(r)
            print(
                f"{path} seed {s}: reference final eval hack p {r['final']:.3f} in {r['seconds']:.1f} s "
                f"({r['train_steps']} training steps)",
                file=sys.stderr,
                flush=True,
            )
        steps = int(np.mean([r["train_steps"] for r in runs]))
        short = {**ref, "num_episodes": args.episodes, "eval_frequency": eval_every}
        ours = idsjax_runs(short, steps, seeds, [r["layout"] for r in runs], args.evaluations)
        our_curve = [round(float(np.mean(c)), 3) for c in ours["curve"]]
        ref_curve = [
            round(float(np.mean([r["curve"][i] for r in runs])), 3) for i in range(min(len(r["curve"]) for r in runs))
        ]
        rm, rse = mean_se([r["final"] for r in runs])
        im, ise = mean_se(ours["final"])
        rows.append(
            {
                "path": path,
                "episodes": args.episodes,
                "seeds": len(seeds),
                "steps_per_seed": steps,
                "reference_mean": rm,
                "reference_se": rse,
                "idsjax_mean": im,
                "idsjax_se": ise,
                "reference_per_seed": [r["final"] for r in runs],
                "idsjax_per_seed": ours["final"],
                "reference_last_logged_mean": mean_se([r["last_logged"] for r in runs])[0],
                "reference_seconds": sum(r["seconds"] for r in runs),
                "idsjax_seconds": ours["seconds"],
                "idsjax_steps_per_seed": ours["steps_per_seed"],
                "reference_curve": ref_curve,
                "idsjax_curve": our_curve,
            }
        )
        rows[-1]["equivalence"] = equivalence(rows[-1])
        print(rows[-1], file=sys.stderr, flush=True)
    result = {
        "command": "python -m baselines.reference_grid.vs_reference "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "note": (
            f"Each configuration: the reference's TabularQAgent for {args.episodes} episodes per seed "
            f"(evaluated after episode 1 and every {max(1, args.episodes // args.evaluations)} episodes, "
            "then at the end, on the configuration's evaluation episodes, greedy), one seed after the other; "
            "idsjax's baselines.tabular_q mapped as in the grid (the reference's table key, lowest-id ties, "
            "target and per-episode ε factor, see the mapping), for the reference runs' mean number of "
            "training steps (rounded up to whole 16-step updates), every seed on the construction-time "
            "layout its reference run drew, all seeds in one program (time includes compilation), "
            f"evaluated before training and after each 1/{args.evaluations} of it. Both 'final' values are "
            "the end-of-training evaluation (the reference's is not in its logged results: it is counted "
            "from the agent; its last logged one is kept as reference_last_logged_mean). " + equivalence_sentence()
        ),
        "rows": rows,
        "figure": f"results/reference_grid/{FIGURE}",
    }
    return write(result, results_dir(args))


def write(result: dict, results: str) -> dict:
    import json

    os.makedirs(results, exist_ok=True)
    draw(result["rows"], results)
    path = os.path.join(results, "vs_reference.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=lambda x: bool(x) if isinstance(x, np.bool_) else float(x))
    print(path)
    return result


def rescore(args) -> dict:
    """The existing comparison judged by the current rule: each row's `equivalence` from its per-seed
    values (a file from before the equivalence test holds the former rule's `same`, dropped here), and
    the note's closing rule sentence replaced. Trains nothing; the command, runs and curves stay."""
    import json

    results = results_dir(args)
    source = readable(results, "vs_reference.json")
    try:
        with open(source) as f:
            result = json.load(f)
        rows = result["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        print(
            f"python -m baselines.reference_grid.vs_reference: error: no comparison with rows to rescore at {source}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    for row in rows:
        row.pop("same", None)
        row["equivalence"] = equivalence(row)
    result["note"] = note_without_rule(result.get("note", "")) + " " + equivalence_sentence()
    return write(result, results)


def draw(rows: list[dict], results: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.reference_grid.style import FIGURE_DPI, FIGURE_WIDTH_INCHES

    cols = min(len(rows), 3)
    lines = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(FIGURE_WIDTH_INCHES, 0.3 + 3.0 * lines), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        rc, ic = r["reference_curve"], r["idsjax_curve"]
        ax.plot(np.linspace(0, 1, len(rc)), rc, "o-", ms=4, label="reference")
        ax.plot(np.linspace(0, 1, len(ic)), ic, "s-", ms=4, label="idsjax")
        ax.set_title(r["path"], fontsize=11)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("fraction of training", fontsize=10)
        ax.set_ylabel("eval hack probability", fontsize=10)
        ax.tick_params(labelsize=9)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    axes[0][0].legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(results, FIGURE), dpi=FIGURE_DPI)
    plt.close(fig)


if __name__ == "__main__":
    main()
