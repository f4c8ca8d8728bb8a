"""Issue 22: the demo's STEER weight log is the run's own loss metrics, reduced as the run logs them."""

import pytest
import torch

from openrlhf_steer.apps.demo.config import MethodSpec, RLConfig
from openrlhf_steer.apps.demo.io import read_jsonl
from openrlhf_steer.apps.demo.models import build_char_tokenizer, build_tiny_model, save_policy
from openrlhf_steer.apps.demo.task import get_task
from openrlhf_steer.apps.demo.train import METRICS, MethodRun
from openrlhf_steer.apps.demo.weight_log import LOG_NAME, LOGGED_KEYS, SteerWeightLogger


def test_each_row_equals_the_runs_logged_weight_metrics(tmp_path, monkeypatch):
    import openrlhf_steer.apps.demo.train as train

    collect = train.collect_rollout

    def mixed_rewards(*args, **kwargs):  # an untrained model earns no reward: give every group mixed ones
        rollout = collect(*args, **kwargs)
        rollout.rewards = torch.tensor([1.0, 0.0, 0.0, 1.0] * 4)
        return rollout

    monkeypatch.setattr(train, "collect_rollout", mixed_rewards)
    start_dir = tmp_path / "start"
    save_policy(build_tiny_model("xxs", seed=0), build_char_tokenizer(), start_dir)
    task = get_task("add1")
    pool, _ = task.split(0, 8)
    rl = RLConfig(
        steps=2, prompts_per_step=4, samples_per_prompt=4, mini_batches=2, micro_batch_size=3, max_new_tokens=3
    )
    spec = MethodSpec("steer_binary", "steer", {"mapping": "binary", "lambda_min": 0.7}, {}, "")
    run = MethodRun(spec, start_dir, tmp_path / "run", task, pool, rl)
    SteerWeightLogger.attach(run)
    torch.manual_seed(0)
    run.train(progress=False)
    rows = read_jsonl(tmp_path / "run" / METRICS)
    logged = read_jsonl(tmp_path / "run" / LOG_NAME)
    assert [r["step"] for r in logged] == [r["step"] for r in rows] == [0, 1]
    for row, weights in zip(rows, logged):
        for key, name in LOGGED_KEYS.items():
            assert weights[name] == pytest.approx(row[f"train/method/{key}"], abs=1e-12), (row["step"], key)
        # binary mapping: every weight is 0.7 or 1, so the share below 0.95 is the down-weighted share
        assert 0.0 < weights["weights/share_below_0.95"] < 1.0
        assert 0.7 - 1e-6 <= weights["weights/p10"] <= weights["weights/median"] <= 1.0 + 1e-6
