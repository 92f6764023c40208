# Sourced by the Quickstart scripts: make .venv (once) and install the kit with the
# tested versions pinned in constraints.txt. Needs only Python 3.11 and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${KIT_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setting up $VENV (first run: a few minutes)" >&2
  "$PYTHON_BIN" -m venv "$VENV"
fi
EXTRAS="${KIT_EXTRAS:-all,test,docs}"
STAMP="$VENV/.kit-installed-$EXTRAS"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$EXTRAS]"
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
