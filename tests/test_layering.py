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
    """The top-level packages loaded after `statement` in a fresh interpreter."""
    return {m.split(".")[0] for m in _modules_after(statement)}


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


# The game and its environments: what every view, bridge, trainer and the server build on.
CORE = {
    "idsjax.actions", "idsjax.arrays", "idsjax.backend", "idsjax.batch_queries", "idsjax.batched",
    "idsjax.bot_distributions", "idsjax.bots",
    "idsjax.config", "idsjax.env", "idsjax.layout", "idsjax.network", "idsjax.observations", "idsjax.registry",
    "idsjax.rewards", "idsjax.threefry", "idsjax.transition", "idsjax.types", "idsjax.versions",
    "idsjax.scenario", "idsjax.scenario.arrays", "idsjax.scenario.builtin", "idsjax.scenario.canonical",
    "idsjax.scenario.env", "idsjax.scenario.game", "idsjax.scenario.generated", "idsjax.scenario.generator", "idsjax.scenario.names",
    "idsjax.scenario.mutations", "idsjax.scenario.schema", "idsjax.scenario.splits",
}  # fmt: skip


def _idsjax_imports(path: Path) -> set[str]:
    """The idsjax modules a file imports (at any depth of the file: deferred imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "idsjax"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "idsjax":
                found |= {f"idsjax.{alias.name}" for alias in node.names}
            elif node.module.split(".")[0] == "idsjax":
                found.add(node.module)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_game_core_imports_no_view_bridge_server_or_play_module():
    """The core (the game, its environments, scenarios and generated networks) imports only the core:
    never the policies and rollouts, the views, the bridges or the server that are built on it."""
    modules = {p: _module_name(p) for p in (ROOT / "idsjax").rglob("*.py")}
    core_names = {name for name in modules.values() if name in CORE}
    assert core_names == CORE, f"CORE names modules that do not exist: {sorted(CORE - core_names)}"
    known = set(modules.values())
    offenders = {}
    for path, name in modules.items():
        if name not in CORE:
            continue
        # `from idsjax import X` names a module X or a name of the package itself (idsjax.make): only modules count
        upward = {m for m in _idsjax_imports(path) if m in known and m not in CORE and m != "idsjax"}
        if upward:
            offenders[name] = sorted(upward)
    assert not offenders, f"core modules import modules built on the core: {offenders}"


def _runtime_imports(path: Path) -> set[str]:
    """`_idsjax_imports` without the imports under `if TYPE_CHECKING:` (names for type hints only)."""
    tree = ast.parse(path.read_text(), str(path))
    hints_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "idsjax"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "idsjax" or node.module.split(".")[0] == "idsjax":
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_import_circles_in_the_library():
    """No module of `idsjax` imports, at any depth of the file, a module that imports it back
    (directly or through others): each module sits above what it uses. A package's `__init__`
    re-exports its modules and is not a node (importing `idsjax.x.y` runs `idsjax.x` first by design)."""
    paths = {_module_name(p): p for p in (ROOT / "idsjax").rglob("*.py")}
    packages = {name for name, p in paths.items() if p.name == "__init__.py"}
    modules = set(paths) - packages
    graph = {name: sorted(m for m in _runtime_imports(paths[name]) if m in modules and m != name) for name in modules}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)
