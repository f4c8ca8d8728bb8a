#!/usr/bin/env bash
# Pos-Adv Table 2: Qwen2.5-Math-7B with GRPO and its variants (config: reproduce/configs/posadv_table2.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" posadv_table2 "$@"
