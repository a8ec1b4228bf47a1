"""The browser control page end to end, with real peers only: the daemon (`serve --web 0 --midi-out
--midi-in --midi-api jack`, the shipped mel_2bar) on a private JACK server, the page in a headless
Chromium driven by Selenium (chromium + chromium-driver), and jack_midi_dump listening to the
daemon's virtual MIDI port. Clicking Generate and turning a knob must draw the pattern in the piano
roll and play exactly its notes on the MIDI port; Capture A takes a phrase played into MIDI in.

Runs in its own pytest process with the other JACK test (Makefile JACK_TESTS): python-rtmidi's JACK
backend is native code.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import mido
import pytest

from bridge.daemon.client import spawn_server

from surface_helpers import ROOT, SHIPPED

sys.path.insert(0, str(ROOT / "tests" / "bridge" / "live"))
from test_midi_jack import JackMonitor, jack  # noqa: E402,F401  (the JACK test's server fixture and monitor)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

NOTE_RGB = (88, 196, 255)          # the piano roll's note colour (#58c4ff, style of app.js)


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    driver_bin = shutil.which("chromedriver")
    assert chromium and driver_bin, "Debian's chromium and chromium-driver are required (scripts/setup.sh dev)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,720",
                "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_bin), options=opts)
    yield driver
    driver.quit()


def contiguous(haystack: list, needle: list) -> bool:
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


@pytest.mark.timeout(240, method="thread")
def test_page_generate_and_knob_draw_the_roll_and_play_the_notes_on_the_midi_port(jack, browser, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ctl = jack.open_output("ctl", virtual=True, client_name=f"lbweb-ctl-{tag}")
    monitor = JackMonitor(f"lbweb-monitor-{tag}")
    server = spawn_server([SHIPPED / "mel_2bar"], "--web", "0", "--midi-out", f"lbweb-out-{tag}",
                          "--midi-in", f"lbweb-ctl-{tag}", "--midi-api", "jack", "--workers", "2")
    try:
        url = next(x for x in server.log_lines() if "control page on" in x).split("web=")[1].strip()
        monitor.connect(next(n for n in jack.get_input_names() if f"lbweb-out-{tag}" in n))
        browser.get(url)
        wait = WebDriverWait(browser, 30, poll_frequency=0.05)
        wait.until(lambda d: d.find_element(By.ID, "knob-label-1").text == "note_density")
        assert browser.find_element(By.ID, "model").get_attribute("value") == "mel_2bar"

        def shown_pattern(after_id):
            p = browser.execute_script("return window.latentBridge.pattern")
            return p if p is not None and p["id"] != after_id else None

        def check_roll(pattern):
            drawn = browser.execute_script("return window.latentBridge.drawn")
            assert [(d["pitch"], d["start"], d["dur"]) for d in drawn] == [tuple(n[:3]) for n in pattern["notes"]]
            for d in drawn[:4]:        # the pixels: each note's box is painted in the note colour
                rgb = browser.execute_script(
                    "var g = document.getElementById('roll').getContext('2d');"
                    "return Array.from(g.getImageData(arguments[0], arguments[1], 1, 1).data).slice(0, 3);",
                    int(d["x"] + 1), int(d["y"] + 1))
                assert tuple(rgb) == NOTE_RGB, (d, rgb)

        def wait_midi(pattern):
            """The pattern's note-ons, in order, come out of the daemon's virtual port (one loop)."""
            want = [n[0] for n in sorted(pattern["notes"], key=lambda n: n[1])]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if contiguous([p for _, p in monitor.note_ons()], want):
                    return
                time.sleep(0.1)
            raise AssertionError(f"MIDI out never played {want}; it played {[p for _, p in monitor.note_ons()][-40:]}")

        t0 = time.monotonic()
        browser.find_element(By.ID, "generate").click()
        generated = wait.until(lambda d: shown_pattern(None))
        click_to_roll_ms = (time.monotonic() - t0) * 1e3
        assert "generated" in browser.find_element(By.ID, "status").text
        check_roll(generated)
        wait_midi(generated)

        t0 = time.monotonic()
        browser.find_element(By.ID, "knob-1").send_keys(Keys.END)      # the note_density knob all the way up
        turned = wait.until(lambda d: shown_pattern(generated["id"]))
        knob_to_roll_ms = (time.monotonic() - t0) * 1e3
        assert browser.find_element(By.ID, "knob-1").get_attribute("value") == "1"
        assert turned["notes"] != generated["notes"]
        check_roll(turned)
        wait_midi(turned)
        print(f"\npage -> pattern drawn: generate {click_to_roll_ms:.0f} ms, knob {knob_to_roll_ms:.0f} ms "
              f"(MIDI out then starts it at the next bar); load {os.getloadavg()[0]:.2f}")

        # a phrase played into MIDI in, captured as A from the page
        for i, pitch in enumerate((60, 64, 67, 72)):
            ctl.send(mido.Message("note_on", note=pitch, velocity=100))
            time.sleep(0.05)
            ctl.send(mido.Message("note_off", note=pitch))
            time.sleep(0.02)
        browser.find_element(By.ID, "learn-a").click()
        wait.until(lambda d: "A learned: 4 notes from MIDI in" in d.find_element(By.ID, "status").text)
        assert "learned" in browser.find_element(By.ID, "learn-a").get_attribute("class")
        shot = os.environ.get("LATENT_BRIDGE_PAGE_SCREENSHOT") or str(tmp_path / "surfaces_page.png")
        browser.save_screenshot(shot)
        assert Path(shot).stat().st_size > 10_000
    finally:
        assert server.stop() == 0
        ctl.close()
        monitor.close()
