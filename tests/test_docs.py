"""The docs site: it builds with warnings as errors, needs no network, and renders in a real browser.

The build (``docs/build.sh``) executes every notebook page, so it is also a test of the
tutorials' code and of the parity checks they assert. The browser checks load the built site
from a local ``http.server`` in headless Chromium, with its network features off, and read
back, from inside the page, whether each figure decoded (``naturalWidth > 0``) and whether
MathJax typeset every formula (``mjx-container`` elements, no raw TeX left in the text).

Skips, saying why, when the docs extra (``pip install -e '.[all,docs]'``) or Chromium (Debian's
``chromium`` package) is missing. ``KIT_DOCS_SCREENSHOTS=<folder>`` also saves screenshots of
the checked pages there.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: What the build imports: the docs extra of pyproject.toml (import names).
DOCS_MODULES = ("sphinx", "myst_nb", "sphinx_design", "sphinx_book_theme", "ipykernel", "sphinx-mathjax-offline")
PAGES = ("index", "theory", "tutorials/manual", "tutorials/autodiff", "tutorials/modules", "tutorials/optimizer",
         "tutorials/optimizers", "tutorials/deeper", "porting", "digits", "hyperparameters", "report", "api")
#: The pages checked in the browser: the index and one tutorial.
BROWSER_PAGES = ("index", "tutorials/manual")
BUILD_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built by docs/build.sh with this interpreter into a temporary folder."""
    missing = [name for name in DOCS_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)}): "
                    "pip install -c constraints.txt -e '.[all,docs]'")
    out = tmp_path_factory.mktemp("docs") / "html"
    env = dict(os.environ, PYTHON=sys.executable, DOCS_OUT=str(out))
    start = time.perf_counter()
    done = subprocess.run(["bash", str(DOCS / "build.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"docs/build.sh failed (exit {done.returncode}):\n{log[-8000:]}"
    assert "Kernel is running over TCP" not in log  # the local kernels' warning, silenced in conf.py
    print(f"docs built in {time.perf_counter() - start:.0f} s")
    return out


def test_every_page_is_built(site: Path) -> None:
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page


def test_notebook_pages_store_no_outputs() -> None:
    """Pages are MyST text notebooks executed at build time: no .ipynb, every code page declares mystnb."""
    sources = [path for path in DOCS.rglob("*") if "_build" not in path.relative_to(DOCS).parts]
    stored = [str(path) for path in sources if path.suffix == ".ipynb"]
    assert not stored, f"notebooks are stored as MyST markdown, without outputs: {stored}"
    for page in (path for path in sources if path.suffix == ".md"):
        text = page.read_text(encoding="utf-8")
        if "{code-cell}" in text:
            assert text.startswith("---\nfile_format: mystnb\n"), f"{page} has code cells but no mystnb header"


_EXTERNAL = re.compile(
    r"""<(?:script|img|iframe)\b[^>]*\bsrc=["'](?:https?:)?//"""  # scripts, images, frames from elsewhere
    r"""|<link\b[^>]*\bhref=["'](?:https?:)?//[^"']*["'][^>]*>""",  # stylesheets, fonts, preloads from elsewhere
    re.IGNORECASE,
)


def test_the_site_loads_nothing_from_the_network(site: Path) -> None:
    """No page pulls a script, a stylesheet, a font or an image from another host (no CDN)."""
    offenders = {}
    for page in site.rglob("*.html"):
        found = [m.group(0)[:160] for m in _EXTERNAL.finditer(page.read_text(encoding="utf-8"))]
        found = [tag for tag in found if not re.search(r"""rel=["'](?:canonical|alternate)""", tag)]
        if found:
            offenders[str(page.relative_to(site))] = found
    for css in site.rglob("*.css"):
        urls = re.findall(r"""url\(\s*["']?(?:https?:)?//[^)]*\)""", css.read_text(encoding="utf-8", errors="replace"))
        if urls:
            offenders[str(css.relative_to(site))] = urls[:3]
    assert not offenders, f"assets loaded from the network: {json.dumps(offenders, indent=1)}"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert 'src="_static/mathjax/tex-chtml.js' in (site / "index.html").read_text(encoding="utf-8")


# --- in the browser ---------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """``run(url, *flags) -> stdout`` of headless Chromium: a fresh profile, no host but 127.0.0.1."""
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")

    def run(url: str, *flags: str) -> str:
        profile = tmp_path_factory.mktemp("chromium-profile")
        command = [
            executable, "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
            "--hide-scrollbars", f"--user-data-dir={profile}",
            # Offline, even where the machine has a network: every host but the local server fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            *flags, url,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"chromium failed (exit {done.returncode}): {done.stderr[-2000:]}"
        return done.stdout

    return run


@pytest.fixture(scope="module")
def served(site: Path):
    """The built site over HTTP on 127.0.0.1 (the probe reads pages through a same-origin iframe)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/index.html", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the local http.server did not answer")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


# Loads a page in an iframe, waits for MathJax and the images, and writes what it found into #result.
_PROBE = """<!doctype html>
<html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<iframe id="page" src="PAGE" style="width:1280px;height:40000px;border:0"></iframe>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", async () => {
  const out = {};
  try {
    const win = frame.contentWindow, doc = frame.contentDocument;
    if (win.MathJax && win.MathJax.startup && win.MathJax.startup.promise) await win.MathJax.startup.promise;
    const images = Array.from(doc.querySelectorAll("main img, article img"));
    await Promise.all(images.map(img => img.complete ? null
        : new Promise(done => { img.onload = img.onerror = done; })));
    out.images = images.map(img => ({src: img.getAttribute("src"), naturalWidth: img.naturalWidth}));
    out.mathjax = win.MathJax && win.MathJax.version ? win.MathJax.version : null;
    out.formulas = doc.querySelectorAll(".math").length;
    out.typeset = doc.querySelectorAll("mjx-container").length;
    out.untypeset = Array.from(doc.querySelectorAll(".math")).filter(el => !el.querySelector("mjx-container")).length;
    out.mathErrors = doc.querySelectorAll("mjx-merror").length;
    const raw = doc.body.innerText.match(/\\\\(frac|tilde|hat|mathcal|operatorname|nabla|qquad|sum)\\b/);
    out.rawTex = raw ? raw[0] : null;
  } catch (error) {
    out.error = String(error);
  }
  document.getElementById("result").textContent = JSON.stringify(out);
});
</script>
</body></html>
"""


def _probe(site: Path, served: str, browser, page: str) -> dict:
    probe = site / f"_probe_{page.replace('/', '_')}.html"
    probe.write_text(_PROBE.replace("PAGE", f"{page}.html"), encoding="utf-8")
    dom = browser(f"{served}/{probe.name}", "--virtual-time-budget=30000", "--window-size=1280,1000", "--dump-dom")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert match, f"no probe result in the dumped DOM: {dom[:500]}"
    text = html.unescape(match.group(1))
    assert text != "pending", f"{page}: the page did not finish loading within the virtual time budget"
    return json.loads(text)


@pytest.mark.parametrize("page", BROWSER_PAGES)
def test_page_renders_figures_and_math(site: Path, served: str, browser, page: str) -> None:
    result = _probe(site, served, browser, page)
    assert "error" not in result, result
    assert result["images"], f"{page}: no figure on the page"
    blank = [image["src"] for image in result["images"] if image["naturalWidth"] <= 0]
    assert not blank, f"{page}: figures that did not load: {blank}"
    assert result["mathjax"], f"{page}: MathJax did not load"
    assert result["formulas"] > 0 and result["typeset"] >= result["formulas"], result
    assert result["untypeset"] == 0 and result["mathErrors"] == 0, result
    assert result["rawTex"] is None, f"{page}: raw TeX visible in the page text: {result['rawTex']}"

    screenshots = os.environ.get("KIT_DOCS_SCREENSHOTS")
    if screenshots:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
        target = Path(screenshots) / f"{page.replace('/', '_')}.png"
        browser(f"{served}/{page}.html", "--virtual-time-budget=30000", "--window-size=1280,2400",
                f"--screenshot={target}")
        assert target.is_file() and target.stat().st_size > 10_000
