"""Dependencies point down: the library never imports the research kit, the benchmarks, or the kit's
heavy dependencies; the kit plugs its checkpoints in through the entry-point group instead."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPWARD = ("baselines", "benchmarks")
# What the kit needs and the library must not pull in on import.
HEAVY = ("optax", "orbax", "matplotlib", "distrax", "tqdm")


def _imported_roots(path: Path) -> set[str]:
    """Top-level names of every import statement and every string passed to importlib.import_module."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    roots.add(arg.value.split(".")[0])
    return roots


def test_no_module_of_the_library_imports_upward():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & set(UPWARD))
        for path in sorted((ROOT / "idsjax").rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"idsjax modules import the research kit or the benchmarks: {offenders}"


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_library_and_its_views_loads_no_kit_and_no_heavy_dependency():
    loaded = _loaded_after("import idsjax, idsjax.play, idsjax.render, idsjax.rollout, idsjax.trajectories")
    assert not loaded & set(UPWARD), sorted(loaded & set(UPWARD))
    # gymnax's own package __init__ imports matplotlib (its bsuite/misc environments plot): what
    # gymnax loads by itself is not the library's doing, everything else on the list is.
    from_gymnax = _loaded_after("import gymnax.environments")
    forbidden = set(HEAVY) - from_gymnax
    assert not loaded & forbidden, f"import idsjax loads {sorted(loaded & forbidden)}"
    assert {"optax", "orbax"}.isdisjoint(loaded)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_library_loads_no_bridge_and_no_more_of_gymnasium_than_gymnax_does():
    """The bridges are interop: `import idsjax` registers the gymnasium names (strings only) and
    loads neither `idsjax.gym_bridge`, `idsjax.pettingzoo_bridge` nor PettingZoo; of gymnasium it
    loads only what gymnax, the environment API, loads by itself."""
    loaded = _modules_after("import idsjax")
    assert not {"idsjax.gym_bridge", "idsjax.pettingzoo_bridge", "idsjax.marl"} & loaded
    assert not any(m == "pettingzoo" or m.startswith("pettingzoo.") for m in loaded)
    from_gymnax = {m for m in _modules_after("import gymnax.environments") if m.split(".")[0] == "gymnasium"}
    extra = sorted(m for m in loaded if m.split(".")[0] == "gymnasium" and m not in from_gymnax)
    assert not extra, f"import idsjax loads gymnasium modules that gymnax does not: {extra}"
    # The names are registered all the same, and making one loads the bridge.
    made = _modules_after(
        "import gymnasium, idsjax\nenv = gymnasium.make('idsjax/idsgame-minimal_defense-v3')\n"
        "assert type(env.unwrapped).__name__ == 'IdsGameGymEnv'"
    )
    assert "idsjax.gym_bridge" in made
