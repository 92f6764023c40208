#!/usr/bin/env bash
# The main job: train and compare all eight implementations on the shipped circles data.
# Extra arguments go to `python -m frameworks compare` (see --help).
export KIT_EXTRAS="${KIT_EXTRAS:-all}"
source "$(dirname "$0")/_setup.sh"
exec python -m frameworks compare --dataset circles "$@"
