#!/usr/bin/env bash
# The main job on the bundled demo model: export -> parity validate -> quality -> bench.
# Sets up .venv first (scripts/setup.sh). Extra arguments go to `scales-edge demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SCALES_EDGE_VENV:-.venv}/bin/activate"
exec scales-edge demo "$@"
