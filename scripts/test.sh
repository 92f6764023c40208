#!/usr/bin/env bash
# The test suite. Extra arguments go to pytest (e.g. -k parity, -x).
source "$(dirname "$0")/_setup.sh"
exec python -m pytest "$@"
