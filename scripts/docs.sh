#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (every notebook executed, warnings as errors).
# Extra arguments go to sphinx-build.
export KIT_EXTRAS="${KIT_EXTRAS:-all,test,docs}"
source "$(dirname "$0")/_setup.sh"
PYTHON=python exec bash docs/build.sh "$@"
