"""The browser game in real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

Run by `make test-browser` (which installs them); excluded from the default suite (marker `browser`).
Set IDSJAX_SCREENSHOT=PATH to keep the screenshot (the README's docs/serve_browser.png comes from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
webdriver = pytest.importorskip("selenium.webdriver")
httpx = pytest.importorskip("httpx")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from test_serve_e2e import REPO, _free_port  # noqa: E402


def _chromedriver() -> str:
    path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(path):
        pytest.fail("chromedriver is missing: apt-get install chromium chromium-driver (make test-browser does)")
    return path


# A registered id (the README's screenshot), and a generated family, whose buttons must name the nodes
# of each game's own network (the page asks /actions with its token at every episode).
GAMES = {"registered": ["--env", "idsgame-v3"], "generated": ["--generator", "small", "--max-games", "8"]}


@pytest.fixture(scope="module", params=list(GAMES))
def url(request):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "idsjax.serve",
            *GAMES[request.param],
            "--port",
            str(port),
            "--opponent",
            "bot:defend_minimal",
            # Every batch size compiled before /health answers: on a fresh clone's cold cache the
            # compilations otherwise run while the page waits for its first move (it once timed out).
            "--warm-up",
        ],
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            httpx.get(base + "/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
    yield base, request.param
    proc.terminate()
    proc.wait(timeout=30)


def test_play_a_few_moves_by_clicking(url, tmp_path):
    url, game = url
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    # Selenium Manager cannot download anything here: the system chromedriver, by path.
    driver = webdriver.Chrome(service=Service(_chromedriver()), options=options)
    try:
        # Patience, not a latency bound: on a fresh clone's cold compilation cache, under load, a first
        # step once took longer than 60 s to show (the moves themselves are what this test checks).
        wait = WebDriverWait(driver, 180)
        driver.get(url + "/")
        driver.find_element(By.ID, "game-id").send_keys("browser-game")
        Select(driver.find_element(By.ID, "side")).select_by_value("attacker")
        driver.find_element(By.ID, "start").click()
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#actions button.action")))
        wait.until(
            lambda d: d.execute_script(
                "const i = document.getElementById('board');return i.complete && i.naturalWidth > 0;"
            )
        )
        for move in range(1, 4 if game == "registered" else 12):
            before = driver.find_element(By.ID, "status").text
            driver.find_element(By.CSS_SELECTOR, "#actions button.action").click()
            if game == "registered":
                wait.until(
                    lambda d, m=move: (
                        f"step {m}" in d.find_element(By.ID, "status").text
                        or "episode 1" in d.find_element(By.ID, "status").text
                    )
                )
                continue
            # A generated family: every step changes the step or the episode count; the buttons then
            # name the game's own nodes, never the family-wide wording's unknown role ("?").
            wait.until(lambda d, b=before: d.find_element(By.ID, "status").text != b)
            labels = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#actions button.action")]
            assert labels and all(re.search(r"\(n\d+, (server|data|start)\)$", t) for t in labels), labels
        status = driver.find_element(By.ID, "status").text
        assert "You play the attacker" in status and "your last action" in status
        assert driver.find_element(By.ID, "error").text == ""
        assert "Your legal actions" in driver.find_element(By.ID, "text").text
        keep = os.environ.get("IDSJAX_SCREENSHOT") if game == "registered" else None
        shot = Path(keep or tmp_path / "page.png")
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        driver.quit()
