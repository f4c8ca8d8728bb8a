"""Shared pytest set-up. Loaded by rootdir (importlib mode); this folder is never the `tests` package."""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # torch.compile costs seconds per call on CPU
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SUPPORT_DIR = TESTS_DIR / "support"
STUBS_DIR = SUPPORT_DIR / "stubs"

# Helper modules for tests live in tests/support (module names start with `steertest_`).
sys.path.insert(0, str(SUPPORT_DIR))

# flash_attn and vllm cannot run on CPU; openrlhf imports them at module level. Stub them only when
# the real packages are absent (on a GPU box the real ones win).
if importlib.util.find_spec("flash_attn") is None or importlib.util.find_spec("vllm") is None:
    sys.path.append(str(STUBS_DIR))

import torch  # noqa: E402

torch.set_num_threads(1)


def shared_data_dir() -> Path:
    """The real test sets: $OPENRLHF_STEER_DATA, else ../shared/data, else the copy in tests/data/shared/data
    (openrlhf_steer.shared_data.locate_data_dir). Raises SharedDataNotFound naming the places tried."""
    from openrlhf_steer.shared_data import locate_data_dir

    return locate_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from openrlhf_steer.shared_data import SharedDataNotFound

    try:
        return shared_data_dir()
    except SharedDataNotFound as err:
        pytest.skip(f"shared test data not found: {err}")
