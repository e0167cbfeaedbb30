"""What `pip install .` gives a user: the wheels hold what they should, and idsjax needs nothing it does not declare.

Instead of installing into a fresh virtual environment (minutes: the jax wheels are large), the tests build
both wheels and check the imports of a real `import idsjax` / make / reset / step against the dependency
closure that the idsjax wheel declares. A module that gymnax imports without declaring it (six, once)
belongs to a distribution outside that closure, so the test fails until idsjax declares it.
"""

from __future__ import annotations

import email.parser
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
# Build outputs, caches and run results that a source tree may hold but a wheel never needs.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".jax_cache", ".pytest_cache", "__pycache__", "*.egg-info", "build", "dist", "runs", "results"
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _setuptools_major() -> int:
    try:
        return int(md.version("setuptools").split(".")[0])
    except md.PackageNotFoundError:
        return 0


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """Both wheels, built from copies of the source so the checkout gets no build/ or egg-info."""
    tmp = tmp_path_factory.mktemp("wheels")
    shutil.copytree(REPO, tmp / "lib", ignore=_NOT_SOURCE)
    # The kit finds its package from the folder above, so its copy keeps the name `baselines`.
    shutil.copytree(REPO / "baselines", tmp / "kit" / "baselines", ignore=_NOT_SOURCE)
    # Offline when `make install` has put a new enough setuptools in the venv; else pip fetches one.
    isolation = ["--no-build-isolation"] if _setuptools_major() >= 77 else []
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(tmp / "out")]
    done = subprocess.run([*cmd, str(tmp / "lib"), str(tmp / "kit" / "baselines")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {_norm(p.name.split("-")[0]): p for p in (tmp / "out").glob("*.whl")}
    assert set(found) == {"idsjax", "idsjax-baselines"}, found
    return found


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def _source_files(folder: Path) -> set[str]:
    """Files a wheel must carry for `folder`'s package: everything but caches and run results."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "results" not in p.relative_to(folder).parts
    }


def test_idsjax_wheel_holds_the_library_only(wheels):
    with zipfile.ZipFile(wheels["idsjax"]) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"idsjax"}, f"the idsjax wheel installs more than idsjax: {sorted(tops)}"
    carried = {n.removeprefix("idsjax/") for n in names if n.startswith("idsjax/")}
    missing = _source_files(REPO / "idsjax") - carried
    # A folder without __init__.py, or a data file without package-data, would be silently left out.
    assert not missing, f"files under idsjax/ missing from the wheel: {sorted(missing)}"


def test_kit_wheel_holds_baselines_and_the_policy_loader(wheels):
    with zipfile.ZipFile(wheels["idsjax-baselines"]) as z:
        names = z.namelist()
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"baselines"}, sorted(tops)
    carried = {n.removeprefix("baselines/") for n in names if n.startswith("baselines/")}
    wanted = {f for f in _source_files(REPO / "baselines") if f.endswith(".py")}
    missing = wanted - carried
    assert not missing, (
        f"modules under baselines/ missing from the idsjax-baselines wheel: {sorted(missing)} "
        "(does each subpackage folder have an __init__.py?)"
    )
    assert re.search(
        r"^\[idsjax\.policy_loaders\]\s*\ncheckpoint\s*=\s*baselines\.checkpoints:load_checkpoint_policy\s*$",
        entry_points,
        re.M,
    ), entry_points
    requires = [_norm(Requirement(r).name) for r in _metadata(wheels["idsjax-baselines"]).get_all("Requires-Dist")]
    assert "idsjax" in requires


def test_kit_is_installed_editable_from_this_checkout():
    """`make install` installs the kit editable: the entry point resolves to this checkout's baselines."""
    # The install's own record: a build may also leave idsjax_baselines.egg-info in the working directory.
    installed = [d for d in md.distributions(name="idsjax-baselines") if d.read_text("direct_url.json")]
    if not installed:
        pytest.fail("idsjax-baselines is not installed: run `make install`")
    dist = installed[0]
    loaders = [ep for ep in dist.entry_points if ep.group == "idsjax.policy_loaders"]
    assert [(ep.name, ep.value) for ep in loaders] == [("checkpoint", "baselines.checkpoints:load_checkpoint_policy")]
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct_url.get("dir_info", {}).get("editable"), direct_url
    assert Path(direct_url["url"].removeprefix("file://")).resolve() == REPO / "baselines"


def _closure(requirements: list[str]) -> set[str]:
    """Installed distributions reachable from `requirements` (extras followed, other extras' deps not)."""
    seen: set[tuple[str, str]] = set()
    reached: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        for extra in sorted(req.extras) or [""]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            try:
                dist = md.distribution(name)
            except md.PackageNotFoundError:
                continue  # not installed here, so nothing imported below can come from it
            reached.add(name)
            for line in dist.requires or []:
                sub = Requirement(line)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    todo.append(sub)
    return reached


def _owners() -> dict[Path, str]:
    """File -> distribution for every installed file; editable projects own their source folders."""
    owners: dict[Path, str] = {}
    for dist in md.distributions():
        if not dist.metadata["Name"]:
            continue  # a broken install left without metadata
        name = _norm(dist.metadata["Name"])
        for f in dist.files or []:
            owners[Path(dist.locate_file(f)).resolve()] = name
    return owners


# Only modules that `code` imports: site's .pth files load editable finders and setuptools' distutils
# hack at start-up, whatever the program. The distributions the requirements do not reach are made
# unimportable first, as on a machine that has only the requirements: a package that imports one of
# them only when it is installed (seaborn imports statsmodels, which the research kit brings) then
# runs as it would there, and one that needs it fails the program.
_IMPORTED_FILES = """
import importlib.abc, importlib.metadata, json, re, sys
_allowed = set(json.loads({allowed!r}))
_norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
_blocked = {{
    top for top, dists in importlib.metadata.packages_distributions().items()
    if not any(_norm(d) in _allowed for d in dists)
}}

class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _blocked:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not required)", name=name)
        return None

sys.meta_path.insert(0, _Absent())
_before = set(sys.modules)
{code}
_new = [m for name, m in list(sys.modules.items()) if name not in _before]
print(json.dumps(sorted({{m.__file__ for m in _new if getattr(m, "__file__", None)}})))
"""

_MAKE_RESET_STEP = """
import jax, idsjax
env, params = idsjax.make("idsgame-minimal_defense-v3", seed=0)
obs, state = env.reset(jax.random.PRNGKey(0), params)
out = env.step(jax.random.PRNGKey(1), state, 0, params)
jax.block_until_ready(out)
"""


def _declared(wheel: Path, extra: str) -> list[str]:
    """The wheel's requirements for `pip install idsjax` (extra "") or `idsjax[extra]`, markers resolved."""
    out = []
    for line in _metadata(wheel).get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", extra}):
            req.marker = None
            out.append(str(req))
    return out


# The views need the `play` extra; importing them must need nothing more (and not the research kit).
_VIEWS = "import idsjax.play, idsjax.render, idsjax.trajectories, idsjax.pettingzoo_bridge"


@pytest.mark.parametrize(("extra", "code"), [("", _MAKE_RESET_STEP), ("play", _VIEWS)], ids=["core", "play"])
def test_imports_need_only_declared_dependencies(wheels, tmp_path, extra, code):
    allowed = _closure(_declared(wheels["idsjax"], extra)) | {"idsjax"}
    # Run where a user would: outside the checkout, so nothing is imported from the working directory.
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED_FILES.format(code=code, allowed=json.dumps(sorted(allowed)))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    files = [Path(f).resolve() for f in json.loads(done.stdout.splitlines()[-1])]

    stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}
    owners = _owners()
    editable = {REPO / "idsjax": "idsjax", REPO / "baselines": "idsjax-baselines", REPO / "benchmarks": "benchmarks"}
    used: dict[str, Path] = {}
    for f in files:
        owner = owners.get(f) or next((d for root, d in editable.items() if f.is_relative_to(root)), None)
        if owner is None and any(f.is_relative_to(s) for s in stdlib):
            continue  # the standard library
        used.setdefault(owner or f"<no distribution: {f}>", f)
    undeclared = {d: str(f) for d, f in used.items() if d not in allowed}
    assert not undeclared, (
        f"{code.strip()!r} imported modules of distributions that the requirements of idsjax"
        f"{f'[{extra}]' if extra else ''} do not reach (declare them in pyproject.toml): {undeclared}"
    )
