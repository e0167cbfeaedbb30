// The browser game: join as a side, see the board as the renderer draws it for that side, click an action.
"use strict";
let token = null;
let names = null;       // {attacker: [...], defender: [...]}: what each action id means in this game
let namesEpisode = null; // the episode `names` was fetched in: a generated family's network changes with it
let role = null;
let busy = false;

const $ = (id) => document.getElementById(id);

async function call(path, body, method = "POST") {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

async function refreshBoard() {
  const r = await fetch("/frame.png", { headers: { "Authorization": "Bearer " + token } });
  if (!r.ok) return;
  const url = URL.createObjectURL(await r.blob());
  const img = $("board");
  const old = img.src;
  img.src = url;
  try { await img.decode(); } catch (err) { /* a frame replaced by a newer one */ }
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

async function loadNames(view) {
  names = await call("/actions", undefined, "GET");  // with the token: this game's wording now
  namesEpisode = view.episode;
}

async function show(view) {
  // The last action in the wording of the network it was played on (fetched before the new episode's).
  const last = view.action === null ? "" :
    ` · your last action ${view.action} (${names[role][view.action]}), reward ${view.reward}`;
  let end = "";
  if (view.done) end = view.hacked ? " · the network was HACKED" : view.detected ? " · the attacker was DETECTED" : " · time ran out";
  $("status").textContent = `You play the ${view.role} in ${view.env_id}, game ${view.game_id} · episode ${view.episode}, ` +
    `step ${view.step}${last}${end} · return ${view.episode_return} · episodes ${view.episodes}, hacks ${view.hacks}, ` +
    `detections ${view.detections}`;
  $("text").textContent = view.text || "";
  if (view.episode !== namesEpisode) await loadNames(view);
  const box = $("actions");
  box.textContent = "";
  for (const id of view.legal_actions) {
    const b = document.createElement("button");
    b.textContent = `${id}: ${names[role][id]}`;
    b.dataset.action = id;
    b.className = "action";
    b.onclick = () => play(id);
    box.appendChild(b);
  }
  return refreshBoard();
}

async function play(id) {
  if (busy) return;
  busy = true;
  try { showError(null); await show(await call("/step", { action: id, text: true })); }
  catch (err) { showError(err); }
  finally { busy = false; }
}

$("start").onclick = async () => {
  try {
    showError(null);
    role = $("side").value;
    const gameId = $("game-id").value.trim();
    const body = { role, text: true };
    if (gameId) body.game_id = gameId;
    const answer = await call("/join", body);
    token = answer.token;
    await loadNames(answer.view);
    $("game-id").value = answer.view.game_id;
    $("setup").querySelectorAll("input, select, button").forEach((e) => e.disabled = true);
    $("game").hidden = false;
    await show(answer.view);
  } catch (err) { showError(err); }
};
$("reset").onclick = async () => {
  try { await show(await call("/reset", { text: true })); } catch (err) { showError(err); }
};
$("leave").onclick = async () => {
  try { await call("/leave"); } catch (err) { showError(err); }
  token = null;
  $("game").hidden = true;
  $("setup").querySelectorAll("input, select, button").forEach((e) => e.disabled = false);
};
