#!/usr/bin/env bash
# STEER Figure 2: entropy-change estimators (Omega vs Cov) against the measured per-token entropy change (config: reproduce/configs/steer_figure2.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" steer_figure2 "$@"
