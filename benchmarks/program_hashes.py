"""A fingerprint of the compiled `jax.vmap(env.step)` of each game: two checkouts whose fingerprints agree
compile the same program, so they run at the same speed by construction.

    python -m benchmarks.program_hashes --envs all               # the 110 ids
    python -m benchmarks.program_hashes --envs idsgame-v3 --scenarios

Per game: XLA's optimised HLO of `jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))` on a batch of
`--batch` games (all-zero actions), with what does not change the program removed (source metadata,
the module's name, the names of instructions), hashed with SHA-256. `--scenarios` adds a scenario file,
a built-in version played as a scenario, and a generated family. `benchmarks.compare_commits` reads
these to time only the games whose programs differ.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys

import jax
import jax.numpy as jnp

from benchmarks import _harness as h

SCENARIO_GAMES = ("scenario:office_dmz", "scenario:builtin-v3", "generated:default")


def _make(name: str):
    import idsjax
    from idsjax.scenario import builtin_scenario

    if name == "scenario:office_dmz":
        return idsjax.make_scenario("scenarios/examples/office_dmz.yaml", mode="minimal_defense")
    if name == "scenario:builtin-v3":
        return idsjax.make_scenario(builtin_scenario(3), mode="minimal_defense")
    if name == "generated:default":
        return idsjax.make_generated(None, mode="minimal_defense")
    return idsjax.make(name)


def _normalised(text: str) -> str:
    """The program without what does not change it: source metadata, the module's name, the tables of
    source locations, and the names of instructions and computations, renamed in order of appearance
    (XLA names an instruction after the JAX operation that made it: `%and` and `%broadcast_in_dim` can
    be the same broadcast)."""
    text = re.sub(r", metadata=\{[^}]*\}", "", text)
    text = re.sub(r"^HloModule [^\n]*", "", text)
    text = re.sub(r"(?m)^\d+ \"[^\n]*\n", "", text)  # the tables of source files and functions
    text = re.sub(r"(?m)^\d+ \{[^\n]*\n", "", text)  # ... and of stack frames
    text = re.sub(r"\b[A-Za-z_][\w\-]*(\.\d+)?: (?=[a-z]+\d*\[|\()", "", text)  # parameter names of signatures
    names: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        return names.setdefault(match.group(0), f"%v{len(names)}")

    return re.sub(r"%[A-Za-z0-9_.\-]+", rename, text)


def program_hash(name: str, batch: int, dump: str | None = None) -> str:
    env, params = _make(name)
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    zeros = jnp.zeros(batch, jnp.int32)
    action = {"attacker": zeros, "defender": zeros} if env.learner == "both" else zeros
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    text = _normalised(step.lower(keys, state, action, params).compile().as_text())
    if dump:
        with open(f"{dump}/{name.replace(':', '_')}.hlo", "w") as f:
            f.write(text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> dict[str, str]:
    # A program read back from the persistent compilation cache prints differently: compile afresh.
    jax.config.update("jax_enable_compilation_cache", False)
    p = argparse.ArgumentParser(prog="python -m benchmarks.program_hashes", description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["default"], help="ids, 'default' or 'all' (default: default)")
    p.add_argument("--scenarios", action="store_true", help="also a scenario file, a built-in scenario, a family")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dump", help="also write each normalised program to DUMP/<name>.hlo (to diff two checkouts)")
    args = p.parse_args(argv)
    names = h.resolve_ids(args.envs) + (list(SCENARIO_GAMES) if args.scenarios else [])
    out = {}
    for name in names:
        out[name] = program_hash(name, args.batch, args.dump)
        print(name, out[name], flush=True)
        print(f"  {len(out)}/{len(names)}", file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    main()
