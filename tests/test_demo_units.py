"""Unit checks of the demo's pure pieces, each against an independent computation."""

import json
import math

import numpy as np
import pytest
import torch

from openrlhf_steer.apps.demo.analyses.estimator import exact_logit_space_change, symlog_ticks
from openrlhf_steer.apps.demo.analyses.quadrants import predicted_sign
from openrlhf_steer.core.stats import scaled_agreement as agreement
from openrlhf_steer.apps.demo.batch import build_batch, completion_mask
from openrlhf_steer.apps.demo.io import append_jsonl, read_jsonl, rewrite_jsonl, write_json
from openrlhf_steer.apps.demo.report import moving_average
from openrlhf_steer.apps.demo.task import get_task, sample_problems
from openrlhf_steer.apps.demo.train import window_slices


def test_task_split_is_disjoint_seeded_and_complete():
    task = get_task("add2")
    pool, heldout = task.split(seed=3, num_heldout=200)
    assert len(heldout) == 200 and len(pool) == 90 * 90 - 200
    assert not set(pool) & set(heldout)
    assert task.split(seed=3, num_heldout=200) == (pool, heldout)
    assert task.split(seed=4, num_heldout=200)[1] != heldout
    with pytest.raises(ValueError, match="num_heldout"):
        task.split(seed=0, num_heldout=0)


def test_rewards_exact_match_and_chat_parsing():
    add2, chat = get_task("add2"), get_task("add1-chat")
    assert add2.question((12, 34)) == "12+34="
    assert add2.reward((12, 34), "46") == 1.0
    assert add2.reward((12, 34), "47") == 0.0
    assert add2.reward((12, 34), "4 6") == 0.0  # the char model must answer with digits only
    assert chat.reward((3, 4), "3 + 4 = 7") == 1.0
    assert chat.reward((3, 4), "7") == 1.0
    assert chat.reward((3, 4), "The answer is 8.\n7") == 0.0  # only the first line counts
    assert chat.reward((3, 4), "") == 0.0


def test_step_problems_depend_only_on_seed_and_step():
    pool = get_task("add1").split(0, 8)[0]
    assert sample_problems(pool, 5, seed=1, step=7) == sample_problems(pool, 5, seed=1, step=7)
    assert sample_problems(pool, 5, seed=1, step=7) != sample_problems(pool, 5, seed=1, step=8)


def test_completion_mask_stops_after_first_eos():
    eos = 2
    ids = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 2, 7, 0], [5, 6, 7, 8, 9]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    assert torch.equal(completion_mask(ids, eos), expected)


def test_build_batch_layout_left_prompt_right_completion():
    batch = build_batch([[1, 5], [1, 5, 6, 7]], [[8, 2], [9]], pad_id=0, eos_id=2)
    assert batch.prompt_len == 4
    assert batch.input_ids.tolist() == [[0, 0, 1, 5, 8, 2], [1, 5, 6, 7, 9, 0]]
    assert batch.attention_mask.tolist() == [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    assert batch.action_mask.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_window_slices_partition_every_sample_once():
    g = torch.Generator().manual_seed(0)
    windows = window_slices(16, mini_batches=2, micro_batch_size=3, generator=g)
    assert len(windows) == 2
    assert [len(m) for m in windows[0]] == [3, 3, 2]
    flat = torch.cat([m for w in windows for m in w]).tolist()
    assert sorted(flat) == list(range(16))


def test_moving_average_trailing_window():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_agreement_statistics_against_direct_formulas():
    x = [1.0, 2.0, 3.0, 4.0]
    y = [2.0, 4.0, 6.5, 7.5]
    got = agreement(x, y)
    assert got["pearson"] == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert got["spearman"] == pytest.approx(1.0)  # monotone
    assert got["mse"] == pytest.approx(np.mean((np.array(x) - np.array(y)) ** 2))
    scale = sum(a * b for a, b in zip(x, y)) / sum(a * a for a in x)  # 58/30
    assert got["scale_fit"] == pytest.approx(scale)
    assert got["mse_scaled"] == pytest.approx(np.mean((np.array(y) - scale * np.array(x)) ** 2))
    assert agreement([1.0, -1.0, 2.0], [-1.0, 1.0, -2.0])["sign_agreement"] == 0.0


def test_exact_logit_space_change_matches_a_finite_difference():
    torch.manual_seed(0)
    z = torch.randn(7, dtype=torch.float64)
    label, advantage, eta = 2, -1.3, 1e-6

    def entropy(logits):
        logp = torch.log_softmax(logits, -1)
        return float(-(logp.exp() * logp).sum())

    pi = torch.softmax(z, -1)
    step = eta * advantage * (torch.nn.functional.one_hot(torch.tensor(label), 7).double() - pi)  # ascent on A log p
    measured = entropy(z + step) - entropy(z)
    assert measured == pytest.approx(-eta * exact_logit_space_change(z, label, advantage), rel=1e-4)


@pytest.mark.parametrize(
    "sign,band,action,expected",
    [
        ("pos", "high", "mask", +1),
        ("pos", "low", "mask", -1),
        ("neg", "high", "mask", -1),
        ("neg", "low", "mask", +1),
        ("pos", "high", "upweight", -1),
        ("neg", "low", "upweight", -1),
    ],
)
def test_quadrant_predictions(sign, band, action, expected):
    assert predicted_sign(sign, band, action) == expected


def test_jsonl_resume_helpers_drop_a_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"step": 0, "x": 1.0})
    append_jsonl(path, {"step": 1, "x": float("nan")})
    with open(path, "a") as handle:
        handle.write('{"step": 2, "x"')  # a crash mid-write
    rows = read_jsonl(path)
    assert rows == [{"step": 0, "x": 1.0}, {"step": 1, "x": None}]
    rewrite_jsonl(path, rows[:1])
    assert read_jsonl(path) == [{"step": 0, "x": 1.0}]
    write_json(tmp_path / "a.json", {"v": math.inf})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": None}


def test_estimator_symlog_ticks_skip_the_linear_band():
    # linthresh 4e-7: the first decade above it is 1e-6; every second decade up to 1e-2 (>= 4e-3)
    assert symlog_ticks(4e-7, 4e-3) == [-1e-2, -1e-4, -1e-6, 0.0, 1e-6, 1e-4, 1e-2]
    # a band wider than the data still gives 0 and one decade each side
    assert symlog_ticks(1e-3, 1e-5) == [-1e-3, 0.0, 1e-3]
