"""`advisor report` pages in a real browser: headless Chromium (Debian's `chromium` package) loads
each page; no console errors, no failed loads, every figure decoded, the sections present, no
horizontal overflow; a full-page screenshot is kept under test-artifacts/.

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no Python package beyond the
standard library is needed. Skipped when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from advisor.report import SECTION_IDS, build_report, write_report
from advisor.workload import load_workload_or_profile

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser check needs Debian's chromium at /usr/bin/chromium "
           "(apt-get install -y --no-install-recommends chromium)")


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="advisor-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        os.set_inheritable(self._to_child, False)
        os.set_inheritable(self._from_child, False)
        args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]
        # Chromium reads commands on fd 3 and writes replies on fd 4: bash puts the pipe ends there.
        script = f'exec "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.proc = subprocess.Popen(["/bin/bash", "-c", script, "chromium", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # --- transport ---------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    # --- page ------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"exception: {d.get('text')} {(d.get('exception') or {}).get('description', '')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p.get('type')}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def screenshot(self, path: Path) -> Path:
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:  # noqa: BLE001 — the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports on small settings: an HTC-able one that checkpoints (use case 2 with 4 tasks),
    the cat/dog one, and a not-a-fit one (use case 3)."""
    out = tmp_path_factory.mktemp("report-pages")
    made = {}
    for key, path, tasks in (("many_architectures", "2_many_architectures.yaml", 4),
                             ("catdog", "4_catdog.yaml", None),
                             ("foundation_model", "3_foundation_model.yaml", None)):
        w = load_workload_or_profile(REPO / "examples" / "workloads" / path, tasks=tasks)
        rep = build_report(w, "chtc", replications=1, plot_replications=4, seed=1)
        made[key] = write_report(rep, out / f"{key}.html")
    return made


@pytest.fixture
def browser() -> Iterator[DevTools]:
    b = DevTools()
    try:
        yield b
    finally:
        b.close()


CHECKS = """(() => {
  const ids = Array.from(document.querySelectorAll('section[id]')).map(s => s.id);
  const imgs = Array.from(document.images).map(i => ({complete: i.complete, w: i.naturalWidth,
                                                       alt: i.alt, src: i.src.slice(0, 26)}));
  const links = Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href'));
  const pre = document.querySelector('#submit-file pre');
  return {ids, imgs, links, title: document.title,
          verdict: (document.querySelector('#verdict .badge') || {}).textContent,
          submit: pre ? pre.textContent : null,
          scripts: document.scripts.length,
          external: Array.from(document.querySelectorAll('[src],[href]'))
                      .map(e => e.getAttribute('src') || e.getAttribute('href'))
                      .filter(u => /^(https?:)?\\/\\//.test(u)),
          overflow: document.documentElement.scrollWidth - window.innerWidth};
})()"""


@pytest.mark.parametrize("key", ["many_architectures", "catdog"])
def test_report_loads_cleanly_with_every_section(pages: dict[str, Path], browser: DevTools, key: str) -> None:
    browser.open(pages[key].as_uri())
    dom = browser.evaluate(CHECKS)
    shot = browser.screenshot(ARTIFACTS / f"report_{key}.png")
    assert browser.problems() == []
    assert dom["ids"] == list(SECTION_IDS)
    assert dom["links"] == [f"#{i}" for i in SECTION_IDS]
    assert dom["imgs"], "the page has figures"
    for img in dom["imgs"]:
        assert img["complete"] and img["w"] > 0, f"figure did not decode: {img}"
        assert img["alt"] and img["src"].startswith("data:image/svg+xml")
    assert dom["submit"] and "request_gpus = 1" in dom["submit"] and "queue" in dom["submit"]
    assert dom["scripts"] == 0 and dom["external"] == []
    assert dom["overflow"] <= 0, "the page scrolls sideways at 1280 px"
    assert shot.stat().st_size > 50_000
    # On a phone the wide parts (tables, the submit file) scroll inside their boxes, not the page.
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 420, "height": 900,
                                                        "deviceScaleFactor": 1, "mobile": True})
    assert browser.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_not_a_fit_page_has_reasons_and_no_submit_file(pages: dict[str, Path], browser: DevTools) -> None:
    browser.open(pages["foundation_model"].as_uri())
    dom = browser.evaluate(CHECKS)
    browser.screenshot(ARTIFACTS / "report_foundation_model.png")
    assert browser.problems() == []
    assert dom["ids"] == ["verdict", "fit-table", "assumptions"]
    assert dom["verdict"] == "Not a fit for HTC"
    assert dom["submit"] is None
    text = browser.evaluate("document.querySelector('#verdict').innerText")
    assert "What to do instead" in text and "No submit file" in text


def test_the_devtools_client_reports_console_errors(tmp_path: Path, browser: DevTools) -> None:
    """The check above would see a broken page: a script error, console.error, a missing file."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="missing.png">'
                   '<script>console.error("boom"); undefinedFn();</script></body></html>')
    browser.open(bad.as_uri())
    browser.evaluate("1")
    problems = browser.problems()
    assert any("boom" in p for p in problems)
    assert any("undefinedFn" in p for p in problems)
    assert any("missing.png" in p for p in problems)
