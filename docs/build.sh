#!/usr/bin/env bash
# Build the kit's site into docs/_build/html (or $DOCS_OUT), warnings as errors.
#
# Every page with a `file_format: mystnb` header is a notebook that myst-nb executes on every
# build (nb_execution_mode = "force" in docs/conf.py): a failing cell fails the build, and no
# output is stored in the repository. Needs the kit with its docs extra:
#     pip install -c constraints.txt -e '.[all,docs]'
# -E rereads (so re-executes) every page on every build: an incremental build would keep the
# outputs of pages whose source did not change, even when the kit's code did.
# PYTHON picks the interpreter (default: python on PATH); extra arguments go to sphinx-build (e.g. -q).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${DOCS_OUT:-docs/_build/html}"
exec "${PYTHON:-python}" -m sphinx -W --keep-going -E -b html "$@" docs "$OUT"
