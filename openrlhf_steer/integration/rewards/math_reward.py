"""Math reward for OpenRLHF: ``--reward.remote_url $(python -m openrlhf_steer.integration.rewards.math_reward --path)``.

OpenRLHF loads this *file* by path (``importlib.util.spec_from_file_location``, module name
``reward_func``) in every vLLM engine process and calls ``reward_func(queries, prompts, labels)``.
The implementation lives in the package module :mod:`openrlhf_steer.integration.rewards.math_grading` (one
grading service per process however often the file is loaded); see it for the settings
(``OPENRLHF_STEER_REWARD_*`` environment variables). Imports neither DeepSpeed nor OpenRLHF.
"""

import os
import sys

from openrlhf_steer.integration.rewards.math_grading import (  # noqa: F401  (re-exported API)
    EXTRA_LOG_KEYS,
    RewardSettings,
    _outcome,
    grade_responses,
    gradable_text,
    response_text,
    reward_func,
)

if __name__ == "__main__":  # `python -m openrlhf_steer.integration.rewards.math_reward --path` prints this file's path
    if "--path" in sys.argv[1:]:
        print(os.path.abspath(__file__))
    else:
        print(__doc__)
