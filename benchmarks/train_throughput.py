"""Training throughput: environment steps per second of PPO (and DQN, self-play) training, held
against the same PPO on gymnax CartPole-v1 and against the network's arithmetic bound.

    python -m benchmarks.train_throughput                                  # the defaults (a few minutes)
    python -m benchmarks.train_throughput --num-envs 64 4096 --num-seeds 1 64 --algos ppo
    python -m benchmarks.train_throughput --quick                          # a smoke run (< 1 min)

Protocol: each trainer's public `make_train(config, env, params)` with its command line's defaults
(the configuration `python -m baselines.<algo> --num-envs N --num-seeds S` would train), `vmap` over
the seeds, a jitted `lax.scan` of K updates per call (K chosen so a call plays about `--target-steps`
steps). Compile (lower + compile of init and of the K-update scan) and one warmup call are excluded;
steady-state speed is the median of at least `--repeats` calls and `--min-seconds` of training.

The yardstick (`--algos ppo`): the same PPO (same configuration, hyperparameters, network widths and
depth, legal-action masking with an all-true mask) on gymnax `CartPole-v1`, measured in the same run
at every size. Its network differs only where the game does: 4 inputs and 2 actions where the idsjax
id has its observation's size and its action count.

The node-wise network (`--networks`, default both): PPO with `--network nodes` at its defaults on
the same id and sizes, timed with PPO's MLP in interleaved rounds (one timed call of each per round;
a shared machine's load then slows both alike within a round), and `vs_mlp` = the median over the
rounds of its steps/s over the MLP's in the same round (`vs_mlp_low`, `vs_mlp_high`: the extremes).
It has no bound (its kernels run once per node, not once per sample).

The bound: the FLOPs of the network's dense layers per environment step (PPO: one forward in the
rollout, then `update_epochs` x forward + backward, counted as 3 forwards, per sample; DQN: one
forward per step, then per update `gradient_steps x batch_size` samples of forward + backward and one
or two forwards on the next observation), over the matmul rate this machine reaches at the network's
own shapes (a jitted, batched-over-seeds matmul of every kernel at the rollout's and at the
minibatch's row count, measured in the same run). `fraction_of_bound` = measured / bound: the share
of the time the trainer spends doing the network's arithmetic; the rest is the game, the sampling,
GAE, shuffling, optimiser and program overheads (benchmarks/NOTES.md §9).

Writes `train_throughput.csv` and `train_throughput.png` to `--out` (default
benchmarks/results/train). The trainers run on one device (the CPU's cores are used by XLA's
intra-op threads), so this module does not split the CPU into one device per core.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness as h

RESULTS_DIR = h.RESULTS_DIR / "train"
ALGOS = ("ppo", "dqn", "selfplay")
NETWORKS = ("mlp", "nodes")
YARDSTICK = "CartPole-v1"
DEFAULT_ENV = "idsgame-minimal_defense-v7"
DEFAULT_SELFPLAY_ENV = "idsgame-v19"
DEFAULT_NUM_ENVS = (64, 512, 4096)
DEFAULT_NUM_SEEDS = (1, 16)
QUICK_NUM_ENVS = (16,)
QUICK_NUM_SEEDS = (1,)
# Far beyond any timed call: the learning-rate and exploration schedules stay at their start, as in
# the first updates of a real run, and never run past their end.
SCHEDULE_STEPS = 2**30  # int32 counters inside the trainers
MAX_UPDATES_PER_CALL = 64


class UsageError(ValueError):
    """A bad argument: the command line reports it in one sentence and exits with status 2."""


# -- the yardstick as the trainers see an environment --------------------------------------------
class TrainerView:
    """A gymnax environment dressed as the trainers' environments: every action legal
    (`legal_action_mask` all true), and `info` carrying `attacker_reward` (the reward),
    `defender_reward` (its negative) and `hacked` (never), which the trainers' episode statistics
    read. The dynamics and the observations are the gymnax environment's own."""

    learner = "attacker"

    def __init__(self, env):
        self.env = env

    @property
    def default_params(self):
        return self.env.default_params

    def action_space(self, params=None):
        return self.env.action_space(params)

    def observation_space(self, params):
        return self.env.observation_space(params)

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        reward = jnp.asarray(reward, jnp.float32)
        info = {**info, "attacker_reward": reward, "defender_reward": -reward, "hacked": jnp.zeros((), bool)}
        return obs, state, reward, terminated, truncated, info

    def legal_action_mask(self, state, params=None):
        return jnp.ones((self.env.action_space(params).n,), bool)


def make_env(env_id: str):
    """(env, params) as the trainers take them: an idsjax id, or a gymnax id in a `TrainerView`."""
    import idsjax

    if env_id in idsjax.registered_envs():
        return idsjax.make(env_id)
    import gymnax

    env, params = gymnax.make(env_id)
    return TrainerView(env), params


# -- configurations ------------------------------------------------------------------------------
def trainer_module(algo: str):
    import importlib

    return importlib.import_module(f"baselines.{algo}")


def trainer_config(algo: str, env_id: str, num_envs: int, num_seeds: int, extra: Sequence[str] = ()) -> dict:
    """The resolved configuration of `python -m baselines.<algo> --env ENV --num-envs N --num-seeds S
    [extra]`: each trainer's own defaults and checks. A configuration the trainer refuses raises
    UsageError with its sentence."""
    module = trainer_module(algo)
    argv = [
        "--env",
        env_id,
        "--num-envs",
        str(num_envs),
        "--num-seeds",
        str(num_seeds),
        "--total-timesteps",
        str(SCHEDULE_STEPS),
        "--no-progress",
        *extra,
    ]
    parse = module.parse_config if algo == "selfplay" else (lambda a: _cli().parse_config(module, a))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parse(argv)
    except SystemExit:
        said = err.getvalue().strip().splitlines()
        raise UsageError(
            f"baselines.{algo} refuses --num-envs {num_envs} --num-seeds {num_seeds} "
            f"{' '.join(extra)}: {said[-1] if said else 'no reason given'}"
        ) from None


def _cli():
    from baselines import cli

    return cli


# -- timing ----------------------------------------------------------------------------------------
def updates_per_call(steps_per_update: int, num_seeds: int, target_steps: int) -> int:
    return max(1, min(MAX_UPDATES_PER_CALL, math.ceil(target_steps / (steps_per_update * num_seeds))))


class Prepared:
    """One trainer compiled and warmed up: `call()` runs K updates of every seed and returns its
    wall and CPU seconds; `steps` environment steps per call."""

    def __init__(self, algo: str, config: dict, env, env_params, target_steps: int, seed: int = 0):
        trainer = trainer_module(algo).make_train(config, env, env_params)
        seeds = config["num_seeds"]
        self.k = updates_per_call(trainer.steps_per_update, seeds, target_steps)
        self.steps_per_update = trainer.steps_per_update
        k = self.k

        def chunk(runner):
            return jax.lax.scan(lambda r, _: trainer.update(r), runner, None, k)

        rngs = jax.random.split(jax.random.PRNGKey(seed), seeds)
        init_c, self.compile_init_s = h.compile_timed(jax.vmap(trainer.init), rngs)
        runner = init_c(rngs)
        self.chunk_c, self.compile_update_s = h.compile_timed(jax.vmap(chunk), runner, donate=(0,))
        self.runner, _ = jax.block_until_ready(self.chunk_c(runner))  # warmup
        self.steps = seeds * k * trainer.steps_per_update
        self.times: list[float] = []
        self.cpu: list[float] = []

    def call(self) -> None:
        c0, t0 = time.process_time(), time.perf_counter()
        self.runner, _ = jax.block_until_ready(self.chunk_c(self.runner))
        self.times.append(time.perf_counter() - t0)
        self.cpu.append(time.process_time() - c0)

    def row(self) -> dict:
        return {
            "steps_per_update": self.steps_per_update,
            "updates_per_call": self.k,
            "steps_per_s": self.steps / statistics.median(self.times),
            "best_steps_per_s": self.steps / min(self.times),
            "steps_per_cpu_s": self.steps / max(statistics.median(self.cpu), 1e-9),
            "compile_init_s": self.compile_init_s,
            "compile_update_s": self.compile_update_s,
            "program_mib": h.mib(h.program_bytes(self.chunk_c)),
            "repeats": len(self.times),
            "_runner": self.runner,
        }


def measure_training(
    algo: str,
    config: dict,
    env,
    env_params,
    target_steps: int = 2**17,
    repeats: int = 3,
    min_seconds: float = 1.0,
    seed: int = 0,
) -> dict:
    """Compile, warm up once, then time calls of K updates of every seed until `repeats` calls and
    `min_seconds` of training; returns the row of the CSV (without the bound)."""
    prepared = Prepared(algo, config, env, env_params, target_steps, seed)
    while len(prepared.times) < repeats or (sum(prepared.times) < min_seconds and len(prepared.times) < 50):
        prepared.call()
    return prepared.row()


def measure_interleaved(prepared: dict[str, Prepared], repeats: int = 3, min_seconds: float = 1.0) -> dict:
    """Time the compiled trainers in rounds, one call of each per round, until `repeats` rounds and
    `min_seconds` of each: a load that comes and goes on a shared machine then slows every trainer
    alike within a round. Returns each one's row, plus per round the steps/s of each."""
    while True:
        for p in prepared.values():
            p.call()
        rounds = len(next(iter(prepared.values())).times)
        if rounds >= repeats and (min(sum(p.times) for p in prepared.values()) >= min_seconds or rounds >= 50):
            break
    rows = {label: p.row() for label, p in prepared.items()}
    for label, p in prepared.items():
        rows[label]["_round_steps_per_s"] = [p.steps / t for t in p.times]
    return rows


def ratio_in_rounds(row: dict, base: dict) -> tuple[float, float, float]:
    """(median, lowest, highest) over the rounds of `row`'s steps/s over `base`'s in the same round."""
    ratios = [a / b for a, b in zip(row["_round_steps_per_s"], base["_round_steps_per_s"], strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


# -- the arithmetic bound ---------------------------------------------------------------------------
def dense_kernels(params) -> list[tuple[int, int]]:
    """(inputs, outputs) of every dense kernel of one seed's network parameters (leading axis: seeds)."""
    shapes = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if str(getattr(path[-1], "key", "")) == "kernel":
            shapes.append(tuple(int(d) for d in leaf.shape[-2:]))
    return shapes


def forward_flops(kernels: Sequence[tuple[int, int]]) -> int:
    """Multiply-adds of one sample's forward pass through the dense layers, as FLOPs (2 per)."""
    return sum(2 * k * n for k, n in kernels)


_RATES: dict[tuple, float] = {}


def matmul_rate(kernels: Sequence[tuple[int, int]], seeds: int, rows: int, min_seconds: float = 0.2) -> float:
    """FLOP/s of this machine on the network's own matmuls: every kernel `[seeds, rows, k] @ [seeds, k,
    n]` (the shapes `vmap` over seeds gives the trainers), in a jitted loop whose every iteration
    depends on the last, so XLA can neither hoist nor drop a product."""
    cache_key = (tuple(kernels), seeds, rows)
    if cache_key in _RATES:
        return _RATES[cache_key]
    keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(kernels))
    xs = [jax.random.normal(keys[2 * i], (seeds, rows, k)) for i, (k, _) in enumerate(kernels)]
    ws = [jax.random.normal(keys[2 * i + 1], (seeds, k, n)) / np.sqrt(k) for i, (k, n) in enumerate(kernels)]
    flops_per_iter = seeds * rows * forward_flops(kernels)

    def run(xs, ws, iters):
        def body(_, scale):
            total = jnp.float32(0)
            for x, w in zip(xs, ws, strict=True):
                # The scale carries a dependence from each iteration to the next (1e-30 x the mean):
                # the product cannot be hoisted out of the loop, nor its result discarded.
                total = total + jnp.einsum("srk,skn->srn", x, w * scale).mean()
            return 1.0 + 1e-30 * total

        return jax.lax.fori_loop(0, iters, body, jnp.float32(1.0))

    run_c = jax.jit(run)  # the trip count is traced: one compile for every length
    jax.block_until_ready(run_c(xs, ws, 1))
    iters = 4
    while True:
        t0 = time.perf_counter()
        jax.block_until_ready(run_c(xs, ws, iters))
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds or iters >= 2**16:
            break
        iters = min(2**16, iters * max(2, int(min_seconds / max(elapsed, 1e-6))))
    rate = flops_per_iter * iters / elapsed
    _RATES[cache_key] = rate
    return rate


def bound(algo: str, config: dict, runner, min_seconds: float = 0.2) -> dict:
    """FLOPs per environment step of rollout and update, the measured matmul rates at their shapes,
    and the steps per second the network's arithmetic alone would allow."""
    if algo not in ("ppo", "dqn"):
        return {}  # self-play: two networks on games of different sizes; no single bound
    kernels = dense_kernels(runner.train_state.params)
    if not kernels:
        return {}
    seeds, n_envs = config["num_seeds"], config["num_envs"]
    fwd = forward_flops(kernels)
    spu = n_envs * config["num_steps"]
    if algo == "ppo":
        roll = fwd * (1 + 1 / config["num_steps"])  # + the value of the observation after the rollout
        upd = fwd * 3 * config["update_epochs"]
        upd_rows = spu // config["num_minibatches"]
    else:
        roll = fwd
        samples = config["gradient_steps"] * config["batch_size"]
        upd = fwd * samples * (3 + 1 + (1 if config["double_q"] else 0)) / spu
        upd_rows = config["batch_size"]
    rate_roll = matmul_rate(kernels, seeds, n_envs, min_seconds)
    rate_upd = matmul_rate(kernels, seeds, upd_rows, min_seconds)
    seconds_per_step = roll / rate_roll + upd / rate_upd
    return {
        "flops_per_step": roll + upd,
        "rollout_matmul_gflops": rate_roll / 1e9,
        "update_matmul_gflops": rate_upd / 1e9,
        "bound_steps_per_s": 1.0 / seconds_per_step,
    }


# -- the command line -------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--algos", nargs="+", default=["ppo", "dqn"], help=f"trainers: {' '.join(ALGOS)} (default: %(default)s)"
    )
    p.add_argument("--env", default=DEFAULT_ENV, help="single-agent idsjax id for ppo and dqn (default: %(default)s)")
    p.add_argument(
        "--selfplay-env", default=DEFAULT_SELFPLAY_ENV, help="two-agent id for selfplay (default: %(default)s)"
    )
    p.add_argument(
        "--num-envs",
        nargs="+",
        type=int,
        default=None,
        help=f"environments per seed (default: {' '.join(map(str, DEFAULT_NUM_ENVS))})",
    )
    p.add_argument(
        "--num-seeds",
        nargs="+",
        type=int,
        default=None,
        help=f"seeds trained together (default: {' '.join(map(str, DEFAULT_NUM_SEEDS))})",
    )
    p.add_argument("--no-yardstick", action="store_true", help=f"skip the same PPO on {YARDSTICK}")
    p.add_argument(
        "--networks",
        nargs="+",
        default=["mlp", "nodes"],
        help="PPO's networks, timed interleaved: mlp, nodes (--network nodes at its defaults) (default: %(default)s)",
    )
    p.add_argument("--no-bound", action="store_true", help="skip the matmul-rate measurement and the bound")
    p.add_argument(
        "--target-steps", type=int, default=2**17, help="environment steps per timed call (default: %(default)s)"
    )
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the warmup (default: %(default)s)")
    p.add_argument(
        "--min-seconds", type=float, default=1.0, help="timed training per measurement (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder (default: benchmarks/results/train)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: --num-envs 16 --num-seeds 1, one short repeat (unless given)"
    )
    args = p.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    if args.quick:
        args.num_envs = args.num_envs or list(QUICK_NUM_ENVS)
        args.num_seeds = args.num_seeds or list(QUICK_NUM_SEEDS)
        if "--repeats" not in given:
            args.repeats = 1
        if "--min-seconds" not in given:
            args.min_seconds = 0.0
        if "--target-steps" not in given:
            args.target_steps = 2**10
    args.num_envs = args.num_envs or list(DEFAULT_NUM_ENVS)
    args.num_seeds = args.num_seeds or list(DEFAULT_NUM_SEEDS)
    for algo in args.algos:
        if algo not in ALGOS:
            p.error(f"--algos takes {', '.join(ALGOS)}, got {algo!r}")
    for network in args.networks:
        if network not in NETWORKS:
            p.error(f"--networks takes {', '.join(NETWORKS)}, got {network!r}")
    for name in ("num_envs", "num_seeds"):
        bad = [v for v in getattr(args, name) if v <= 0]
        if bad:
            p.error(f"--{name.replace('_', '-')} must be positive, got {bad[0]}")
    for name in ("target_steps", "repeats"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.min_seconds < 0:
        p.error(f"--min-seconds must be >= 0, got {args.min_seconds}")
    try:
        for algo in args.algos:
            env_id = args.selfplay_env if algo == "selfplay" else args.env
            for n in args.num_envs:
                trainer_config(algo, env_id, n, args.num_seeds[0])
    except UsageError as e:
        p.error(str(e))
    return args


NODES_LABEL = "ppo (nodes)"


def groups(args) -> list[list[tuple[str, str, str, tuple[str, ...]]]]:
    """(algo, label, env id, extra options) of every trainer measured, in groups timed together
    (interleaved): PPO's MLP with its node-wise network (`--networks`), then PPO's yardstick."""
    out = []
    for algo in args.algos:
        if algo == "selfplay":
            out.append([(algo, algo, args.selfplay_env, ())])
            continue
        group = [(algo, algo, args.env, ())] if algo != "ppo" or "mlp" in args.networks else []
        if algo == "ppo" and "nodes" in args.networks:
            group.append((algo, NODES_LABEL, args.env, ("--network", "nodes")))
        out.append(group)
        if algo == "ppo" and not args.no_yardstick:
            out.append([(algo, "ppo (CartPole)", YARDSTICK, ())])
    return [g for g in out if g]


def runs(args) -> list[tuple[str, str, str]]:
    """(algo, label, env id) of every trainer measured, in order."""
    return [(algo, label, env_id) for group in groups(args) for algo, label, env_id, _ in group]


def measure_group(args, group, n_envs: int, n_seeds: int) -> list[dict]:
    """The rows of one group of trainers at one size, timed interleaved; a trainer that fails has
    its error in its row and leaves the others measured."""
    rows, prepared, configs = {}, {}, {}
    for algo, label, env_id, extra in group:
        rows[label] = {"algo": label, "env_id": env_id, "num_envs": n_envs, "num_seeds": n_seeds, "error": ""}
        try:
            config_env = args.env if env_id == YARDSTICK else env_id
            configs[label] = trainer_config(algo, config_env, n_envs, n_seeds, extra)
            env, env_params = make_env(env_id)
            prepared[label] = Prepared(algo, configs[label], env, env_params, args.target_steps, args.seed)
        except Exception as e:  # noqa: BLE001 - one failed size must not lose the others
            rows[label]["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    measured = measure_interleaved(prepared, args.repeats, args.min_seconds) if prepared else {}
    for algo, label, _, extra in group:
        row = rows[label]
        if label in measured:
            m = measured[label]
            runner = m.pop("_runner")
            row.update(m)
            if not args.no_bound and not extra:  # the bound counts a flat network's kernels once per sample
                try:
                    row.update(bound(algo, configs[label], runner))
                except Exception as e:  # noqa: BLE001
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        if row["error"]:
            print(f"  {label} num_envs {n_envs} seeds {n_seeds}: FAILED {row['error']}", file=sys.stderr, flush=True)
        else:
            compile_s = row["compile_init_s"] + row["compile_update_s"]
            print(
                f"  {label} num_envs {n_envs} seeds {n_seeds}: {row['steps_per_s']:,.0f} steps/s, "
                f"compile {compile_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    if NODES_LABEL in measured and "ppo" in measured:
        mid, low, high = ratio_in_rounds(rows[NODES_LABEL], rows["ppo"])
        rows[NODES_LABEL].update(vs_mlp=mid, vs_mlp_low=low, vs_mlp_high=high)
        print(
            f"  node-wise ÷ MLP, {len(rows['ppo']['_round_steps_per_s'])} interleaved rounds: "
            f"{mid:.2f} (lowest {low:.2f}, highest {high:.2f})",
            file=sys.stderr,
            flush=True,
        )
    return list(rows.values())


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    print(f"JAX {jax.__version__} on {h.devices_line()}; training on one device", flush=True)
    rows: list[dict] = []
    for n_seeds in args.num_seeds:
        for n_envs in args.num_envs:
            for group in groups(args):
                rows += measure_group(args, group, n_envs, n_seeds)
    add_ratios(rows)
    columns = [
        ("algo", "trainer"),
        ("num_envs", "envs"),
        ("num_seeds", "seeds"),
        ("steps_per_s", "steps/s"),
        ("steps_per_cpu_s", "steps/CPU-s"),
        ("vs_cartpole", "÷ CartPole"),
        ("vs_mlp", "÷ MLP"),
        ("bound_steps_per_s", "bound steps/s"),
        ("fraction_of_bound", "of bound"),
        ("compile_update_s", "compile s"),
        ("error", "error"),
    ]
    print()
    h.print_table(rows, columns)
    keys = [
        "algo",
        "env_id",
        "num_envs",
        "num_seeds",
        "steps_per_update",
        "updates_per_call",
        "steps_per_s",
        "best_steps_per_s",
        "steps_per_cpu_s",
        "vs_cartpole",
        "vs_mlp",
        "vs_mlp_low",
        "vs_mlp_high",
        "flops_per_step",
        "rollout_matmul_gflops",
        "update_matmul_gflops",
        "bound_steps_per_s",
        "fraction_of_bound",
        "compile_init_s",
        "compile_update_s",
        "program_mib",
        "repeats",
        "error",
    ]
    table = [{k: row.get(k, "") for k in keys} | {"device": h.jax_device(), "jax": jax.__version__} for row in rows]
    csv_path = args.out / "train_throughput.csv"
    h.write_csv(csv_path, table)
    print(f"\nwrote {csv_path}")
    if not args.no_plot:
        png = args.out / "train_throughput.png"
        plot(rows, png)
        print(f"wrote {png}")
    return table


def add_ratios(rows: list[dict]) -> None:
    """`vs_cartpole` (PPO on the idsjax id ÷ the same PPO on CartPole at the same size) and
    `fraction_of_bound` (measured ÷ bound), where both figures exist."""
    cartpole = {(r["num_envs"], r["num_seeds"]): r.get("steps_per_s") for r in rows if r["env_id"] == YARDSTICK}
    for r in rows:
        if r.get("steps_per_s") and r.get("bound_steps_per_s"):
            r["fraction_of_bound"] = r["steps_per_s"] / r["bound_steps_per_s"]
        yard = cartpole.get((r["num_envs"], r["num_seeds"]))
        if r["algo"] == "ppo" and r.get("steps_per_s") and yard:
            r["vs_cartpole"] = r["steps_per_s"] / yard


def plot(rows: list[dict], path: Path) -> None:
    """Training steps/s against environments per seed, one line per trainer and seed count, the
    bound dashed beside each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6.5))
    cmap = plt.get_cmap("tab10")
    series = list(dict.fromkeys((r["algo"], r["num_seeds"]) for r in rows if r.get("steps_per_s")))
    for i, (algo, seeds) in enumerate(series):
        pts = sorted(
            (r["num_envs"], r["steps_per_s"], r.get("bound_steps_per_s"))
            for r in rows
            if r["algo"] == algo and r["num_seeds"] == seeds and r.get("steps_per_s")
        )
        x = [p[0] for p in pts]
        color = cmap(i % 10)
        ax.plot(x, [p[1] for p in pts], marker="o", color=color, label=f"{algo}, {seeds} seed(s)")
        if all(p[2] for p in pts):
            ax.plot(x, [p[2] for p in pts], ls="--", lw=1, color=color, label=f"{algo}, {seeds} seed(s): network bound")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("environments per seed (--num-envs)")
    ax.set_ylabel("training environment steps per second (all seeds, compile excluded)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"training throughput — {h.devices_line()}, JAX {jax.__version__}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
