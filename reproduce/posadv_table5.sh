#!/usr/bin/env bash
# Pos-Adv Table 5: Llama-3.1-8B-Instruct with GRPO and its variants (config: reproduce/configs/posadv_table5.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" posadv_table5 "$@"
