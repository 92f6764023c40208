"""Sphinx configuration of the kit's site: MyST notebooks executed at build time, offline assets.

Build with ``docs/build.sh`` (warnings are errors). Every page under ``docs/``
that starts with a ``file_format: mystnb`` header is a text notebook: myst-nb
runs it in a fresh kernel on every build (``nb_execution_mode = "force"``) and a
cell that raises fails the build, so no output is stored in the repository and
every number on the site is measured by the build that made it.

The site needs no network: MathJax comes from the ``sphinx-mathjax-offline``
package (MathJax 3.2.2) and is served from ``_static/mathjax``; the theme
(sphinx-book-theme) ships its fonts and scripts.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sphinx.errors import ConfigError

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The kit, importable by autodoc here and by the notebook kernels (which inherit the environment).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
# Figures are written to PNG files (frameworks.plots does so too) and shown as images: no display.
os.environ["MPLBACKEND"] = "Agg"
# The notebooks train tiny networks (10 hidden units): one intra-op thread a kernel is faster than
# PyTorch's OpenMP pool, whose spinning threads stall badly when the cores are shared (measured on
# 2 cores under load: torch/optim, 40 epochs, 11 s with the default pool, 1.9 s with one thread).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import frameworks  # noqa: E402

project = "rdfia-mlp-kit"
author = "the rdfia-mlp-kit authors"
copyright = "the rdfia-mlp-kit authors, MIT licence"
release = version = frameworks.__version__

extensions = [
    "myst_nb",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "build.sh", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}

# --- MyST and myst-nb -------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # run every notebook on every build: outputs are never stored
nb_execution_raise_on_error = True  # a cell that raises fails the build
nb_execution_timeout = 600  # seconds a cell may take
nb_execution_show_tb = True  # print the traceback of a failing cell in the build log
nb_merge_streams = True


# ipykernel logs "Kernel is running over TCP without encryption" once a notebook. The kernels are local (jupyter_client
# starts them on localhost ports); the line is a log record of each kernel process, not a Python warning of this one,
# so the filter is installed in the kernels, by the kernel config file of the IPython folder they get.
KERNEL_CONFIG = """\
import logging


class LocalKernel(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Kernel is running over TCP without encryption" not in record.getMessage()


logging.getLogger("IPKernelApp").addFilter(LocalKernel())
"""


def _quiet_local_kernels() -> None:
    """Give the notebooks' kernels an IPython folder of their own, whose kernel config drops that one log line.

    The folder is temporary, removed when the build ends; the kernels also start without the user's IPython
    profile (its startup scripts), so every machine runs the notebooks alike.
    """
    ipython_dir = Path(tempfile.mkdtemp(prefix="rdfia-mlp-docs-ipython-"))
    atexit.register(shutil.rmtree, ipython_dir, ignore_errors=True)
    (ipython_dir / "profile_default").mkdir()
    (ipython_dir / "profile_default" / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(ipython_dir)


_quiet_local_kernels()

# --- API reference ----------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autosummary_generate = False  # the API page lists and documents the modules itself: no stub files
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # TrainConfig's "Attributes:" as fields, not duplicate attribute entries
napoleon_use_rtype = False
# Type hints name classes of the frameworks (torch.Tensor, jax.Array) that are not documented here.
nitpicky = False

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "rdfia-mlp-kit"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "launch_buttons": {},
}
html_static_path: list[str] = []
html_last_updated_fmt = None
html_show_sourcelink = True


def _mathjax_dir() -> Path:
    """The MathJax 3 distribution bundled by the ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if (static / "mathjax" / "tex-chtml.js").is_file():
            return static
    raise ConfigError(
        "MathJax is served from the site itself (the build machines have no network), and the "
        "sphinx-mathjax-offline package that bundles it is not installed: "
        "pip install -c constraints.txt -e '.[docs]'"
    )


# html_static_path copies the folder's contents into _static/, so MathJax lands in _static/mathjax/.
html_static_path.append(str(_mathjax_dir()))
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/: no CDN
