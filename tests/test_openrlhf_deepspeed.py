"""With OpenRLHF's real DeepspeedStrategy (ZeRO-2, fp32, gloo on CPU) and gradient accumulation over a
2-micro-batch window: DeepSpeed's gradient of the optimizer step equals the gradient of the core loss
over the whole window (our num_tokens conversion of OpenRLHF's gas-compensated normaliser is exact)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")
pytest.importorskip("deepspeed")

from steertest_openrlhf import save_tiny_qwen2  # noqa: E402

pytestmark = pytest.mark.slow
SUPPORT = Path(__file__).resolve().parent / "support"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = [
    ("grpo", {}),
    ("steer", {"lambda_min": 0.5}),
    ("clip_cov", {"clip_ratio": 0.2, "cov_lb": -1e9, "cov_ub": 1e9}),
    ("entropy_loss", {"coef": 0.05}),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One subprocess (one torch.distributed init) runs every case."""
    model_dir = save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2_ds"))
    paths = [str(SUPPORT)]
    if str(SUPPORT / "stubs") in sys.path or importlib.util.find_spec("flash_attn") is None:  # conftest's CPU stubs
        paths.append(str(SUPPORT / "stubs"))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
        STEERTEST_PORT=str(_free_port()),
        TORCHDYNAMO_DISABLE="1",
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [sys.executable, str(SUPPORT / "steertest_ds_window.py"), model_dir, json.dumps(CASES)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r["method"]: r for r in lines}


@pytest.mark.parametrize("method", [m for m, _ in CASES])
def test_deepspeed_window_gradient_matches_core_loss(results, method):
    result = results[method]
    assert result["engine_steps"] == 1 and result["optimizer_steps"] == 1  # one DeepSpeed step, one controller step
    assert result["ds_grad_norm"] == pytest.approx(result["expected_norm"], rel=1e-4)
    assert result["logged_sum"] == pytest.approx(result["expected_loss"], rel=1e-4, abs=1e-7)
    assert result["expected_norm"] > 0
