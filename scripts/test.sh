#!/usr/bin/env bash
# The test suite, docs build included (the docs test skips, saying why, without Chromium).
# Extra arguments go to pytest (e.g. -k parity, -x).
export KIT_EXTRAS="${KIT_EXTRAS:-all,test,docs}"
source "$(dirname "$0")/_setup.sh"
exec python -m pytest "$@"
