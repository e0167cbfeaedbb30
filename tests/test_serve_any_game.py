"""The game server on every kind of game (issue 23 item 3): a generated family, whose every episode of
every game is played on a network drawn at its reset (legal defenses, node names, text view and action
wording follow it), and `--record` on scenario files and generated families, whose recordings load
with `idsjax.trajectories` and replay bit for bit, through the coordinator and through the real server.
Bad options are one sentence and exit code 2."""

from __future__ import annotations

import asyncio
import random
import re
import signal
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from test_serve import assert_matches  # noqa: E402
from test_serve_shutdown import start_server, stop_server  # noqa: E402

import idsjax  # noqa: E402
from idsjax.network import EMPTY  # noqa: E402
from idsjax.policies import describe_attack  # noqa: E402
from idsjax.scenario import load_scenario  # noqa: E402
from idsjax.scenario.names import network_names, scenario_names  # noqa: E402
from idsjax.serve import Coordinator  # noqa: E402
from idsjax.serve.__main__ import main  # noqa: E402
from idsjax.serve.engine import game_key, reset_key  # noqa: E402
from idsjax.serve.replay import replay as serve_replay  # noqa: E402
from idsjax.trajectories import load_trajectories, replay  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OFFICE = ROOT / "scenarios" / "examples" / "office_dmz.yaml"
# The game of each kind the tests serve (Coordinator keyword arguments).
KINDS = {
    "registered id": {},
    "scenario file": {"scenario": str(OFFICE)},
    "generated family": {"generator": "small"},
}


def _run(body, **kwargs):
    async def go():
        c = Coordinator(**kwargs)
        loop = asyncio.create_task(c.run())
        try:
            return c, await body(c)
        finally:
            loop.cancel()
            c.close()

    return asyncio.run(go())


def _episode_states(env, params, seed: int, episodes: int) -> list:
    """The first state of each of a served game's first episodes (its reset keys: `idsjax.serve.engine`)."""
    start = jax.jit(lambda k: env.initial_state(k, params))
    return [start(reset_key(game_key(seed), e)) for e in range(episodes)]


def _names(c, state):
    network = state.network.scenario
    return network_names(c.env_id, c.env.shape, np.asarray(network.node_mask), np.asarray(network.role))


# -- a generated family ------------------------------------------------------------------------------
def test_every_game_of_a_generated_family_is_played_and_described_on_its_own_network():
    async def body(c):
        ta, va = c.join("g", "attacker", players=["attacker", "defender"], seed=11, text=True)
        td, vd = c.join("g", "defender")
        rng = random.Random(0)
        views = {"attacker": [va], "defender": [vd]}
        actions, names = [], [c.action_names(ta)]
        for _ in range(40):
            a, d = rng.choice(va["legal_actions"]), rng.choice(vd["legal_actions"])
            va, vd = await asyncio.gather(c.submit(ta, a, text=True), c.submit(td, d))
            views["attacker"].append(va)
            views["defender"].append(vd)
            actions.append({"attacker": a, "defender": d})
            names.append(c.action_names(ta))
        return views, actions, names, c.action_names()

    c, (views, actions, names, family_names) = _run(body, generator="small", max_games=4, initial_slots=2)
    env, params = c.env, c.params
    assert c.env_id == "generated-small" and views["attacker"][0]["env_id"] == "generated-small"
    # The views are the game's own, step for step (each episode on the network its reset drew).
    records = serve_replay(env, params, 11, actions)
    for side in ("attacker", "defender"):
        assert_matches(views[side][1:], records, side)
    episodes = views["attacker"][-1]["episode"] + 1
    assert episodes >= 3, "40 random steps of the small family end at least two episodes"
    states = _episode_states(env, params, 11, episodes)
    masks = {np.asarray(s.network.scenario.node_mask).tobytes() for s in states}
    assert len(masks) > 1, "the family drew more than one network"
    defenses = set()
    for t, (va, vd) in enumerate(zip(views["attacker"], views["defender"])):
        state = states[va["episode"]]
        legal = np.flatnonzero(np.asarray(env.defense_mask(state, params))).tolist()
        assert vd["legal_actions"] == legal, t  # this game's network's defenses, not another's
        defenses.add(tuple(legal))
        now = _names(c, state)
        # The text names this network's nodes by index and leaves its absent servers out.
        rows = re.findall(r"^  node (\d+) \((n\d+), (\w+)\):", va["text"], re.M)
        real = np.flatnonzero(np.asarray(state.network.scenario.node_mask))
        assert [int(i) for i, _, _ in rows] == real.tolist(), t
        assert all(name == f"n{i}" for i, name, _ in rows)
        for i in va["legal_actions"]:
            assert f"  {i}: {describe_attack(now, i)}" in va["text"], (t, i)
        assert names[t]["attacker"] == [describe_attack(now, i) for i in range(c.num_ids["attacker"])], t
        if t:  # the last step is described on the network it was played on (the previous one if it ended it)
            played = _names(c, states[views["attacker"][t - 1]["episode"]])
            assert f"you played {va['action']} ({describe_attack(played, va['action'])});" in va["text"], t
    assert len(defenses) > 1, "the legal defenses follow each network"
    # Without a token, the ids are worded by node index alone: which nodes exist differs between games.
    assert family_names["attacker"][10] == "attack type 0 on node 1 (n1, ?)"


def test_a_generated_family_over_http_answers_with_its_games_wording_and_refuses_in_sentences():
    from fastapi.testclient import TestClient

    from idsjax.serve.app import create_app

    c = Coordinator(generator="small", generator_args=["max_layers=1"], max_games=4, initial_slots=2)
    with TestClient(create_app(c)) as client:
        joined = client.post("/join", json={"role": "attacker", "seed": 3, "text": True}).json()
        auth = {"Authorization": f"Bearer {joined['token']}"}
        mine = client.get("/actions", headers=auth).json()
        state = jax.tree.map(lambda x: np.asarray(x)[c.agents[joined["token"]].game.slot], c.engine.states)
        assert mine["attacker"] == [describe_attack(_names(c, state), i) for i in range(c.num_ids["attacker"])]
        assert client.get("/actions").json() == c.action_names() != mine
        assert client.get("/frame.png", headers=auth).headers["content-type"] == "image/png"
        bad = client.get("/actions", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json() == {"error": "unknown or expired token"}
        n = c.num_ids["attacker"]
        out = client.post("/step", json={"action": n}, headers=auth)
        assert out.status_code == 422
        assert out.json() == {"error": f"action {n} is out of range: the attacker's ids are 0..{n - 1}"}
        step = client.post("/step", json={"action": joined["view"]["legal_actions"][0], "text": True}, headers=auth)
        assert step.status_code == 200 and "generated-small" in step.json()["text"]


@pytest.mark.parametrize(
    "argv,sentence",
    [
        (["--generator", "nope"], "--generator 'nope' is not a generator family; use one of small, medium"),
        (["--generator", "small", "--generator-arg", "nope=1"], "--generator-arg 'nope=1': expected K=V"),
        (["--generator", "small", "--mode", "bogus"], "unknown mode 'bogus'"),
        (["--mode", "minimal_defense"], "--mode goes with --scenario or --generator"),
        (["--generator-arg", "max_layers=2"], "--generator-arg goes with --generator"),
        (["--scenario", "no/such/file.yaml"], "no/such/file.yaml"),
    ],
)
def test_bad_game_options_are_one_sentence_and_exit_code_2(argv, sentence, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m idsjax.serve: ") and sentence in err and "\n" not in err, err


def test_two_games_at_once_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--env", "idsgame-v3", "--generator", "small"])
    assert done.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


# -- recordings of every kind of game ----------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_coordinators_recordings_of_every_kind_of_game_replay_bit_for_bit(kind, tmp_path):
    """Episodes that end, one an agent resets mid-way, and the one a game is left in: every file loads
    with `idsjax.trajectories` and replays bit for bit, and holds what was played."""

    async def body(c):
        ta, va = c.join("g", "attacker", players=["attacker", "defender"], seed=21)
        td, vd = c.join("g", "defender")
        rng = random.Random(3)
        played = []
        for t in range(45):
            if t == 20:
                va = c.reset(ta)  # an episode abandoned mid-way is kept with its steps
                vd = c.view(c.agents[td].game, "defender")
            a, d = rng.choice(va["legal_actions"]), rng.choice(vd["legal_actions"])
            va, vd = await asyncio.gather(c.submit(ta, a), c.submit(td, d))
            played.append((a, d, va["reward"], vd["reward"]))
        return played  # the game is still open: closing the server writes its last episode

    c, played = _run(body, record_dir=str(tmp_path), max_games=4, initial_slots=2, **KINDS[kind])
    files = sorted(tmp_path.glob("g.*.npz"))
    assert len(files) == 1 and c.written == [str(files[0])]
    traj = load_trajectories(files[0])
    assert traj.kind == {"registered id": "registered", "scenario file": "scenario"}.get(kind, "generated")
    assert (traj.seed, traj.attacker, traj.defender) == (21, "remote", "remote")
    replay(traj)  # raises ReplayError at the first bit that differs
    valid = traj.valid
    assert traj.attack_action[valid].tolist() == [p[0] for p in played]
    assert traj.defense_action[valid].tolist() == [p[1] for p in played]
    assert traj.rewards[valid].tolist() == [[p[2], p[3]] for p in played]
    if kind == "scenario file":  # the recording names the file's nodes by their ids
        assert [n.id for n in traj.scenario().nodes] == [n.id for n in load_scenario(OFFICE).nodes]
    if kind == "generated family":  # each episode's own network, as its reset drew it
        states = _episode_states(c.env, c.params, 21, traj.num_games)
        for e, state in enumerate(states):
            for a, b in zip(jax.tree.leaves(traj.network(e)), jax.tree.leaves(state.network)):
                assert np.array_equal(a, np.asarray(b)), e
        assert len({traj.network(e).scenario.node_mask.tobytes() for e in range(traj.num_games)}) > 1


def _http_game(url: str, seed: int, steps: int) -> list[dict]:
    """An attacker over HTTP against the server's bot: its views (the join's first), then it leaves."""
    with httpx.Client(base_url=url, timeout=60) as http:
        joined = http.post("/join", json={"role": "attacker", "game_id": "g", "seed": seed, "text": True})
        joined.raise_for_status()
        auth = {"Authorization": f"Bearer {joined.json()['token']}"}
        views = [joined.json()["view"]]
        rng = random.Random(seed)
        for _ in range(steps):
            step = http.post("/step", json={"action": rng.choice(views[-1]["legal_actions"])}, headers=auth)
            step.raise_for_status()
            views.append(step.json())
        assert http.get("/actions", headers=auth).status_code == 200
        http.post("/leave", headers=auth).raise_for_status()
    return views


# The generated family's server and replay compile more (its network drawn at every reset): ~26 s on
# the loaded 2-core machine against the scenario's ~12 s, so its case runs with the slow tests.
@pytest.mark.parametrize("kind", ["scenario", pytest.param("generated", marks=pytest.mark.slow)])
def test_the_real_servers_recordings_of_a_scenario_file_and_a_generated_family_replay(kind, tmp_path):
    """`python -m idsjax.serve --scenario FILE | --generator NAME --record DIR`, played over HTTP and
    stopped by SIGTERM: what it wrote loads, replays bit for bit, and is what the agent was told."""
    game = ["--scenario", str(OFFICE)] if kind == "scenario" else ["--generator", "small"]
    record = tmp_path / "records"
    proc, url, _ = start_server(*game, "--record", str(record), "--max-games", "4", "--opponent", "bot:defend_minimal")
    try:
        views = _http_game(url, seed=8, steps=30)
    finally:
        stop_server(proc, signal.SIGTERM)
    assert views[0]["env_id"] == ("scenario:office_dmz" if kind == "scenario" else "generated-small")
    files = sorted(record.glob("g.*.npz"))
    assert files
    trajs = [load_trajectories(f) for f in files]
    for traj in trajs:
        assert (traj.kind, traj.attacker, traj.defender) == (kind, "remote", "bot:defend_minimal")
        replay(traj)  # raises ReplayError at the first bit that differs
    actions = np.concatenate([t.attack_action[t.valid] for t in trajs]).tolist()
    rewards = np.concatenate([t.rewards[t.valid][:, 0] for t in trajs]).tolist()
    assert actions == [v["action"] for v in views[1:]] and rewards == [v["reward"] for v in views[1:]]


@pytest.mark.slow  # trains a tiny PPO run on the family first (~30 s with a warm compilation cache)
def test_a_checkpoint_trained_on_the_family_plays_the_servers_missing_role(tmp_path):
    import contextlib
    import io

    from kit_runs import SMOKE, SMOKE_EXTRA

    from baselines import ppo

    run = tmp_path / "run"
    argv = SMOKE + SMOKE_EXTRA["ppo"] + ["--generator", "small", "--mode", "minimal_defense"]
    with contextlib.redirect_stdout(io.StringIO()):
        ppo.main(argv + ["--output-dir", str(run)])
    spec = f"checkpoint:{run}"

    async def body(c):
        token, view = c.join(None, "defender", seed=6)
        views, rng = [], random.Random(6)
        for _ in range(30):
            view = await c.submit(token, rng.choice(view["legal_actions"]))
            views.append(view)
        return views

    c, views = _run(body, generator="small", opponents={"attacker": spec}, max_games=2, initial_slots=2)
    records = serve_replay(c.env, c.params, 6, [{"defender": v["action"]} for v in views], bots={"attacker": spec})
    assert_matches(views, records, "defender")
    assert any(r["done"] for r in records)


# -- names indexed by node ---------------------------------------------------------------------------
def test_network_names_index_nodes_and_keep_every_scenario_files_names():
    files = sorted((ROOT / "scenarios" / "examples").glob("*.yaml")) + [
        ROOT / "scenarios" / "builtin" / f for f in ("v0.yaml", "v14.yaml", "v21.yaml")
    ]
    for path in files:
        scenario = load_scenario(path)
        env, params = idsjax.make_scenario(scenario)
        arrays = params.scenario
        mask = np.asarray(arrays.node_mask)
        # A file's nodes come first: its names are its nodes' ids (or n<i>) and roles, in file order.
        assert mask[: len(scenario.nodes)].all() and not mask[len(scenario.nodes) :].any(), path
        roles = tuple(int(r) for r in np.asarray(arrays.role)[: len(scenario.nodes)])
        for given in (scenario, None):
            want = scenario_names(env, params, given)
            ids = [n.id for n in scenario.nodes] if given is not None else [f"n{i}" for i in range(len(roles))]
            assert (want.node_ids, want.roles, want.num_nodes) == (tuple(ids), roles, len(roles)), path
            got = network_names(want.env_id, env.shape, arrays.node_mask, arrays.role, ids)
            assert got == want, path
    # A generated network's absent servers leave gaps: node i is still node_ids[i].
    env, params = idsjax.make_generated({"min_layers": 3, "max_layers": 3, "min_width": 1, "max_width": 3})
    for seed in range(20):
        network = env.initial_state(jax.random.PRNGKey(seed), params).network.scenario
        mask, role = np.asarray(network.node_mask), np.asarray(network.role)
        if mask.all():
            continue
        names = network_names("g", env.shape, mask, role)
        assert env.names(env.initial_state(jax.random.PRNGKey(seed), params).network) == network_names(
            env.name, env.shape, mask, role
        )  # scenario_names, which env.names gives, is indexed by node too
        real = np.flatnonzero(mask)
        assert names.num_nodes == real[-1] + 1
        assert names.node_ids == tuple(f"n{i}" if m else "-" for i, m in enumerate(mask[: real[-1] + 1]))
        assert names.roles == tuple(int(r) if m else EMPTY for r, m in zip(role, mask[: real[-1] + 1]))
        break
    else:
        pytest.fail("20 networks of 3 layers of 1-3 servers had no absent server")
    with pytest.raises(ValueError, match="2 node ids for a network of"):
        network_names("g", env.shape, mask, role, ["a", "b"])
