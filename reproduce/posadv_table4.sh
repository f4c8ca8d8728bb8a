#!/usr/bin/env bash
# Pos-Adv Table 4: Spearman correlation of training entropy with Avg@64 / Pass@64 across checkpoints (config: reproduce/configs/posadv_table4.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" posadv_table4 "$@"
