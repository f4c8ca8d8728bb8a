#!/usr/bin/env bash
# STEER Table 4: extreme clipping (eps_high 5, eps_low 0.99) on Qwen2.5-Math-7B (config: reproduce/configs/steer_table4.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" steer_table4 "$@"
