"""The game server in-process: the coordinator (roles, tokens, batching, idle rules, recording) and the
HTTP/WebSocket application through Starlette's test client. Real sockets: tests/test_serve_e2e.py."""

from __future__ import annotations

import asyncio
import json
import random

import numpy as np
import pytest

pytest.importorskip("fastapi")

import idsjax  # noqa: E402
from idsjax.serve import Coordinator, ServeError  # noqa: E402
from idsjax.serve.replay import initial_observations, replay  # noqa: E402
from idsjax.trajectories import load_trajectories  # noqa: E402

ENV = "idsgame-v3"
VIEW_KEYS = {
    "game_id",
    "role",
    "env_id",
    "episode",
    "step",
    "observation",
    "legal_actions",
    "num_actions",
    "reward",
    "done",
    "terminated",
    "truncated",
    "hacked",
    "detected",
    "action",
    "final_observation",
    "episode_return",
    "episodes",
    "hacks",
    "detections",
    "players",
    "waiting_for",
}


def assert_matches(views, records, side):
    """Every view of `side` equals the in-process replay's step, exactly."""
    i = 0 if side == "attacker" else 1
    assert len(views) == len(records)
    for t, (v, r) in enumerate(zip(views, records)):
        assert v["action"] == r["attack" if i == 0 else "defense"], t
        assert v["reward"] == pytest.approx(r["rewards"][i], abs=0), t
        for flag in ("done", "terminated", "truncated", "hacked", "detected"):
            assert v[flag] == r[flag], (t, flag)
        assert v["observation"] == r["observation"][side], t
        if r["done"]:
            assert v["final_observation"] == r["final_observation"][side], t


async def _duel(c, steps, seed, rng, game_id="g"):
    ta, va = c.join(game_id, "attacker", players=["attacker", "defender"], seed=seed)
    td, vd = c.join(game_id, "defender")
    views = {"attacker": [], "defender": []}
    actions = []
    for _ in range(steps):
        a, d = rng.choice(va["legal_actions"]), rng.choice(vd["legal_actions"])
        va, vd = await asyncio.gather(c.submit(ta, a), c.submit(td, d))
        views["attacker"].append(va)
        views["defender"].append(vd)
        actions.append({"attacker": a, "defender": d})
    return ta, td, views, actions


def _run(coro_fn, **kwargs):
    async def main():
        c = Coordinator(ENV, **kwargs)
        loop = asyncio.create_task(c.run())
        try:
            return await coro_fn(c)
        finally:
            loop.cancel()
            c.close()

    return asyncio.run(main())


def test_duel_follows_the_environment_exactly_and_views_are_private():
    async def body(c):
        # Two games stepped in the same ticks, so their slots share one batched call.
        rng = random.Random(0)
        a, b = await asyncio.gather(_duel(c, 40, 11, rng, "g1"), _duel(c, 40, 12, random.Random(1), "g2"))
        return a, b, c.ticks

    (_, _, views1, actions1), (_, _, views2, actions2), ticks = _run(body)
    env, params = idsjax.make(ENV)
    for views, actions, seed in ((views1, actions1, 11), (views2, actions2, 12)):
        records = replay(env, params, seed, actions)
        assert any(r["done"] for r in records), "40 random steps of v3 end at least one episode"
        for side in ("attacker", "defender"):
            assert_matches(views[side], records, side)
            assert set(views[side][0]) == VIEW_KEYS  # nothing else: no other side's observation or action
    assert ticks <= 80 + 2  # the two games shared ticks (80 steps in all)
    att, dfn = views1["attacker"][-1], views1["defender"][-1]
    assert np.shape(att["observation"]) == (8, 11) and np.shape(dfn["observation"]) == (8, 11)
    assert att["observation"] != dfn["observation"]


def test_bot_plays_the_missing_role_deterministically():
    async def body(c):
        token, view = c.join(None, "attacker", seed=5)
        assert view["observation"] == initial_observations(c.env, c.params, 5)["attacker"]
        views, rng = [], random.Random(2)
        for _ in range(30):
            action = rng.choice(view["legal_actions"])
            view = await c.submit(token, action)
            views.append(view)
        return views

    views = _run(body, opponents={"defender": "bot:defend_minimal"})
    env, params = idsjax.make(ENV)
    records = replay(env, params, 5, [{"attacker": v["action"]} for v in views], bots={"defender": "defend_minimal"})
    assert_matches(views, records, "attacker")


def test_refusals_are_sentences_and_never_change_the_game():
    async def body(c):
        token, view = c.join("g", "attacker", seed=1)
        for bad in (80, -1, 10**12, True, 3.0, "3"):
            with pytest.raises(ServeError) as err:
                c.submit(token, bad)
            assert err.value.status == 422 and ("out of range" in err.value.message or "integer" in err.value.message)
        with pytest.raises(ServeError) as err:
            c.submit("not-a-token", 40)
        assert err.value.status == 401
        with pytest.raises(ServeError) as err:
            c.join("g", "attacker")
        assert err.value.status == 409
        with pytest.raises(ServeError) as err:
            c.join("g", "defender")  # the creator left the defender to the bot
        assert err.value.status == 409 and "opponent" in err.value.message
        with pytest.raises(ServeError):
            c.join("bad id!", "attacker")
        assert c.state(token)["step"] == 0 and c.steps == 0
        other, _ = c.join(None, "defender")
        assert len(token) >= 40 and token != other
        return True

    assert _run(body)


def test_batch_doubles_up_to_max_games_and_leaving_frees_slots():
    async def body(c):
        tokens = [c.join(None, "attacker")[0] for _ in range(5)]
        assert c.engine.capacity == 5 and c.engine.live == 5  # 2 -> 4 -> 5: doubling, capped
        with pytest.raises(ServeError) as err:
            c.join(None, "attacker")
        assert err.value.status == 503
        for t in tokens:
            c.leave(t)
        assert c.games == {} and c.agents == {} and c.engine.live == 0
        with pytest.raises(ServeError):
            c.leave(tokens[0])  # the token died with its agent
        return True

    assert _run(body, max_games=5, initial_slots=2)


def test_idle_agents_are_replaced_by_the_bot_or_end_the_game():
    now = [0.0]

    async def body(c):
        ta, va = c.join("g", "attacker", players=["attacker", "defender"], seed=3)
        td, _ = c.join("g", "defender")
        waiting = c.submit(ta, va["legal_actions"][0])
        now[0] = 100.0
        assert c.reap() == 1
        if c.on_idle == "bot":
            view = await waiting  # the defender's bot stepped the game
            assert view["step"] == 1 and view["players"] == ["attacker"]
        else:
            with pytest.raises(ServeError) as err:
                await waiting
            assert err.value.status == 410 and "idle" in err.value.message
            assert c.games == {}
        with pytest.raises(ServeError):
            c.state(td)
        return True

    assert _run(body, idle_timeout=10, clock=lambda: now[0])
    now[0] = 0.0
    assert _run(body, idle_timeout=10, on_idle="end", clock=lambda: now[0])


def test_reset_starts_the_next_episode_from_its_key():
    async def body(c):
        token, view = c.join(None, "attacker", seed=9)
        assert c.reset(token)["episode"] == 0  # a no-op at an episode's first step
        await c.submit(token, view["legal_actions"][0])
        view = c.reset(token)
        return view

    view = _run(body)
    assert view["episode"] == 1 and view["step"] == 0


def test_recorded_trajectories_load_and_match_the_game(tmp_path):
    async def body(c):
        out = await _duel(c, 60, 21, random.Random(3))
        c.close()  # flushes the unfinished episode too
        return out

    _, _, views, actions = _run(body, record_dir=str(tmp_path))
    files = sorted(tmp_path.glob("g.*.npz"))
    assert files
    traj = load_trajectories(files[0])
    assert traj.env_id == ENV and traj.seed == 21 and traj.attacker == "remote"
    assert int(traj.length.sum()) == 60
    played = traj.attack_action[traj.valid].tolist()
    assert played == [a["attacker"] for a in actions]
    ends = [v["episode_return"] for v in views["attacker"] if v["done"]]
    assert traj.returns[: len(ends), 0].tolist() == pytest.approx(ends)
    assert traj.hacked_final.sum() + traj.detected_final.sum() + traj.timed_out_final.sum() == len(ends)


# -- the application, in-process -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http():
    from fastapi.testclient import TestClient

    from idsjax.serve.app import create_app

    coordinator = Coordinator(ENV, max_games=8, initial_slots=2)
    app = create_app(coordinator, max_body=2048, max_frame=2048)
    with TestClient(app) as client:
        yield client, coordinator


def test_http_game_validation_and_limits(http):
    client, coordinator = http
    r = client.post("/join", json={"role": "attacker", "game_id": "h1", "seed": 4, "text": True})
    assert r.status_code == 200, r.text
    token, view = r.json()["token"], r.json()["view"]
    assert "legal actions" in view["text"] and "node 4" in view["text"]
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/step", json={"action": view["legal_actions"][0]}, headers=auth)
    assert r.status_code == 200 and r.json()["step"] == 1
    assert (
        client.get("/state", params={"text": "true"}, headers=auth).json()["text"].startswith("You play the attacker")
    )
    bad = [
        ({"action": 80}, 422, "out of range"),
        ({"action": "1"}, 422, "integer"),
        ({"action": 1.5}, 422, ""),
        ({"action": True}, 422, ""),
        ({"action": 10**40}, 422, ""),
        ({"action": 1, "extra": 1}, 422, ""),
        ({}, 422, "action"),
    ]
    for body, status, words in bad:
        r = client.post("/step", json=body, headers=auth)
        assert r.status_code == status and words in r.json()["error"], (body, r.text)
    assert (
        client.post("/step", content=b"{not json", headers={**auth, "content-type": "application/json"}).status_code
        == 422
    )
    assert client.post("/step", json={"action": 40}).status_code == 401
    assert client.post("/step", json={"action": 40}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/join", content=b"x" * 4096).status_code == 413
    assert client.get("/state", headers=auth).json()["step"] == 1  # none of that touched the game
    png = client.get("/frame.png", headers=auth)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/").status_code == 200 and "idsjax" in client.get("/").text
    assert client.get("/docs").status_code == 200 and "/step" in client.get("/openapi.json").text
    assert client.post("/leave", headers=auth).json() == {"left": True}
    from fastapi.testclient import TestClient

    from idsjax.serve.app import create_app

    # Another application on the same coordinator, without its lifespan (joins need no ticks).
    strict = TestClient(create_app(coordinator, join_rate=1e-6, join_burst=2, client_rate=1e-6, client_burst=6))
    statuses = [strict.post("/join", json={"role": "attacker"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # two joins per address, then refused
    assert [strict.get("/health").status_code for _ in range(3)] == [200, 200, 429]  # six requests in all
    for game in list(coordinator.games.values()):
        coordinator.close_game(game, "test over")


def test_websocket_protocol(http):
    client, coordinator = http
    with client.websocket_connect("/ws") as ws:
        ws.send_text("{oops")
        assert json.loads(ws.receive_text())["status"] == 400
        ws.send_text(json.dumps({"op": "step", "action": 1}))
        assert json.loads(ws.receive_text())["status"] == 401
        ws.send_text(json.dumps({"op": "fly"}))
        assert json.loads(ws.receive_text())["status"] == 422
        ws.send_text(json.dumps({"op": "join", "role": "defender", "seed": 2}))
        joined = json.loads(ws.receive_text())
        assert joined["ok"] and joined["view"]["role"] == "defender"
        ws.send_text(json.dumps({"op": "step", "action": 10**6}))
        assert "out of range" in json.loads(ws.receive_text())["error"]
        ws.send_text(json.dumps({"op": "step", "action": joined["view"]["legal_actions"][0], "text": True}))
        stepped = json.loads(ws.receive_text())
        assert stepped["ok"] and stepped["view"]["step"] == 1 and "defense" in stepped["view"]["text"]
        ws.send_text("x" * 4096)  # over the frame limit: the server closes the connection
        with pytest.raises(Exception):
            ws.receive_text()
    assert coordinator.games == {}  # the connection's agent left with it and its game closed


def test_rate_limiter_refills_and_stays_bounded():
    from idsjax.serve.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, max_keys=100, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert limiter.allow("a") and not limiter.allow("a")  # one token back after half a second
    for i in range(1000):
        limiter.allow(i)
    assert len(limiter._buckets) <= 100


def test_churn_thousands_of_games_leaves_nothing_behind():
    now = [0.0]

    async def body(c):
        for i in range(2000):
            token, view = c.join(
                None, "attacker" if i % 2 else "defender", players=["attacker", "defender"] if i % 3 == 0 else None
            )
            if i % 4 == 0:
                c.submit(token, view["legal_actions"][0])  # then abandoned mid-step
            if i % 5 == 0:
                c.leave(token)
            if i % 10 == 9:  # the rest are reclaimed by the idle rule (a tick in between answers waiters)
                for _ in range(2):
                    now[0] += 11
                    c.reap()
                    await asyncio.sleep(0.001)
        for _ in range(2):
            now[0] += 11
            c.reap()
            await asyncio.sleep(0.001)
        return c

    c = _run(body, max_games=16, initial_slots=16, idle_timeout=10, window=0, clock=lambda: now[0])
    assert c.games == {} and c.agents == {} and not c._ready
    assert c.engine.capacity == 16 and c.engine.live == 0


def test_a_scenario_game_follows_its_environment_and_speaks_its_node_ids():
    """`Coordinator(scenario=FILE)` (`python -m idsjax.serve --scenario FILE`): the game is the
    scenario's two-agent game, the bot plays the missing role, and the text view and the action names
    use the scenario's node ids (its recordings: tests/test_serve_any_game.py)."""
    office = "scenarios/examples/office_dmz.yaml"

    async def body(c):
        token, view = c.join(None, "attacker", seed=4)
        views, rng = [], random.Random(3)
        for _ in range(30):
            view = await c.submit(token, rng.choice(view["legal_actions"]))
            views.append(view)
        text = c.view(c.agents[token].game, "attacker", text=True)["text"]
        return views, text, c.action_names()

    async def main():
        c = Coordinator(scenario=office, max_games=4, initial_slots=2, opponents={"defender": "bot:defend_minimal"})
        loop = asyncio.create_task(c.run())
        try:
            return c.env_id, await body(c)
        finally:
            loop.cancel()
            c.close()

    env_id, (views, text, names) = asyncio.run(main())
    assert env_id == "scenario:office_dmz"
    env, params = idsjax.make_scenario(office)
    records = replay(env, params, 4, [{"attacker": v["action"]} for v in views], bots={"defender": "defend_minimal"})
    assert_matches(views, records, "attacker")
    assert "(internet, start)" in text and "(database, data)" in text
    assert names["attacker"][4] == "attack type 0 on node 1 (web, server)"


# -- recordings: one file series per game instance, never overwritten ------------------------------------
def _recorded(directory) -> dict:
    """{instance prefix: (seed, [episode lengths...])} of every trajectory file in `directory`."""
    out: dict = {}
    for f in sorted(directory.glob("*.npz")):
        instance = f.name.rsplit(".", 2)[0]  # GAME.INSTANCE of GAME.INSTANCE.PART.npz
        traj = load_trajectories(f)
        seed, lengths = out.setdefault(instance, (traj.seed, []))
        assert seed == traj.seed  # every part of one instance is the same game
        lengths.extend(int(n) for n in traj.length)
    return out


async def _play_and_leave(c, game_id, seed, steps):
    ta, td, _, _ = await _duel(c, steps, seed, random.Random(seed), game_id)
    c.leave(ta)
    c.leave(td)


def test_a_reused_game_id_never_overwrites_its_recording(tmp_path):
    async def body(c):
        await _play_and_leave(c, "g1", 1, 3)
        await _play_and_leave(c, "g1", 2, 1)  # the same id again, after the first game closed
        return True

    _run(body, record_dir=str(tmp_path))
    games = _recorded(tmp_path)
    assert sorted(games.values()) == [(1, [3]), (2, [1])], games
    assert all(name.startswith("g1.") for name in games)


def test_a_restarted_server_on_the_same_directory_keeps_every_recording(tmp_path):
    for seed, steps in ((1, 3), (2, 1), (3, 2)):  # three servers, one after another, one directory

        async def body(c, seed=seed, steps=steps):
            await _duel(c, steps, seed, random.Random(seed), "g1")  # still open: the stop writes it
            return True

        _run(body, record_dir=str(tmp_path))
    assert sorted(_recorded(tmp_path).values()) == [(1, [3]), (2, [1]), (3, [2])]


def test_one_address_holds_at_most_its_share_of_games_and_agents():
    async def body(c):
        mine = [c.join(None, "attacker", client="10.0.0.1")[0] for _ in range(c.client_games)]
        with pytest.raises(ServeError) as err:
            c.join(None, "attacker", client="10.0.0.1")
        assert err.value.status == 429 and "share" in err.value.message
        other, _ = c.join("theirs", "attacker", players=["attacker", "defender"], client="10.0.0.2")
        # Joining another address's game takes no game of one's share, but an agent of it.
        c.join("theirs", "defender", client="10.0.0.1")
        with pytest.raises(ServeError) as err:
            c.join("theirs2", "attacker", client="10.0.0.1")
        assert err.value.status == 429 and "agents" in err.value.message
        c.leave(mine[0])
        c.join(None, "defender", client="10.0.0.1")  # a game left is a game back
        c.close_game(c.agents[other].game, "test")  # ending a game returns its agents' shares too
        assert c._held_agents == {"10.0.0.1": 4} and c._held_games == {"10.0.0.1": 4}
        assert c.join(None, "attacker")[0]  # in-process callers (no address) hold no share
        return True

    assert _run(body, max_games=16, client_agents=5)


def test_the_attackers_frame_draws_nothing_its_observation_hides():
    """`/frame.png` for the attacker: attack values its observation masks (0 there) are not drawn."""
    import jax

    from idsjax.policies import side_observation

    async def body(c):
        token, _ = c.join("f", "attacker", seed=1)
        slot = c.agents[token].game.slot
        states = c.engine.states
        c.engine.states = states.replace(attack=states.attack.at[slot].set(np.int8(7)))  # every node's values
        state = jax.tree.map(lambda x: x[slot], c.engine.states)
        c.agents[token].game.obs["attacker"] = np.asarray(side_observation(c.env, state, "attacker"))
        seen = c.frame_png(token)
        shown = np.asarray(side_observation(c.env, state, "attacker"))[:, : c.config.attack_types]
        assert (shown == 0).any() and (shown == 7).any()  # some nodes hidden, some visible
        # The same picture when the hidden values differ: none of them is drawn.
        hidden = np.where(shown == 7, 7, 3).astype(np.asarray(states.attack).dtype)
        c.engine.states = states.replace(attack=states.attack.at[slot].set(hidden))
        return seen, c.frame_png(token)

    seen, other = _run(body)
    assert seen == other
