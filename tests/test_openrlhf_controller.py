"""PPOTrainer-process hooks: advantage methods on OpenRLHF's experiences and the rollout-entropy relay."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch

pytest.importorskip("openrlhf")

from openrlhf.trainer.ppo_utils.experience import Experience  # noqa: E402

from openrlhf_steer.core.advantages import compute_advantages  # noqa: E402
from openrlhf_steer.integration import experience_maker  # noqa: E402
from openrlhf_steer.integration.flags import EntropyControlSpec  # noqa: E402
from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY  # noqa: E402
from openrlhf_steer.methods import build_method  # noqa: E402
from openrlhf_steer.methods.base import GroupInputs  # noqa: E402

N_PER_PROMPT = 4
REWARDS_BY_INDEX = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]  # two prompts x four responses
LENGTHS_BY_INDEX = [3, 5, 2, 4, 6, 1, 3, 2]  # response tokens


def _args():
    return NS(
        reward=NS(clip_range=(-10.0, 10.0), overlong_buffer_len=None, stop_properly_penalty_coef=None),
        rollout=NS(n_samples_per_prompt=N_PER_PROMPT, max_new_tokens=8),
        data=NS(max_len=16),
        algo=NS(
            advantage=NS(estimator="group_norm", gamma=1.0, lambd=1.0, no_std_norm=False),
            kl=NS(init_coef=0.0, use_loss=False),
        ),
    )


def _experiences(with_entropy: bool):
    """Three micro-batches with shuffled rollout indices and different widths (OpenRLHF layout)."""
    g = torch.Generator().manual_seed(0)
    layout = [[5, 0, 2], [7, 3], [1, 6, 4]]
    out = []
    for rows in layout:
        width = max(LENGTHS_BY_INDEX[i] for i in rows) + 2  # 2 prompt positions
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for r, i in enumerate(rows):
            mask[r, 2 : 2 + LENGTHS_BY_INDEX[i]] = True
        info = {}
        if with_entropy:
            info[OLD_ENTROPY_KEY] = torch.rand(len(rows), width, generator=g) * mask
        out.append(
            Experience(
                sequences=torch.zeros(len(rows), width + 1, dtype=torch.long),
                action_mask=mask,
                action_log_probs=-torch.rand(len(rows), width, generator=g) * mask,
                rewards=torch.tensor([REWARDS_BY_INDEX[i] for i in rows]),
                kl=torch.zeros(len(rows), width),
                index=list(rows),
                info=info,
            )
        )
    return out


def _maker(spec):
    maker = experience_maker.EntropyControlExperienceMaker.__new__(experience_maker.EntropyControlExperienceMaker)
    args = _args()
    maker.strategy, maker.args, maker.advantage_estimator = NS(args=args), args, "group_norm"
    maker.kl_ctl = NS(value=0.0)
    maker.entropy_control_setup(spec)
    return maker


def test_w_reinforce_replaces_grpo_advantages_by_hand_values():
    maker = _maker(EntropyControlSpec(methods=[("w_reinforce", {"positive_weight": 0.1})]))
    experiences = maker.compute_advantages_and_returns(_experiences(with_entropy=False))
    for exp in experiences:
        for r, index in enumerate(exp.index):
            expected = 0.1 if REWARDS_BY_INDEX[index] == 1.0 else -1.0  # W-REINFORCE: lambda*r or -1
            row_mask = exp.action_mask[r]
            assert torch.allclose(exp.advantages[r][row_mask], torch.full((int(row_mask.sum()),), expected))
            assert float(exp.advantages[r][~row_mask].abs().sum()) == 0.0
            assert torch.equal(exp.returns[r], exp.advantages[r])


def test_grpo_method_leaves_openrlhf_advantages_alone():
    exps = _experiences(with_entropy=False)
    ours = _maker(EntropyControlSpec(methods=[("grpo", {})])).compute_advantages_and_returns(exps)
    # OpenRLHF group_norm: (r - mean_g) / (std_g + 1e-9) on every response token
    for exp in ours:
        for r, index in enumerate(exp.index):
            group = torch.tensor(REWARDS_BY_INDEX[(index // 4) * 4 : (index // 4) * 4 + 4])
            expected = (REWARDS_BY_INDEX[index] - group.mean()) / (group.std() + 1e-9)
            assert torch.allclose(
                exp.advantages[r][exp.action_mask[r]], expected.float().expand(int(exp.action_mask[r].sum()))
            )


def test_entropy_advantage_method_sees_rows_in_rollout_order():
    """Edge-GRPO reads per-token rollout entropy: our padded batch must map rows to the right groups."""
    exps = _experiences(with_entropy=True)
    method_config = {}
    ours = _maker(EntropyControlSpec(methods=[("edge_grpo", method_config)])).compute_advantages_and_returns(
        _experiences(with_entropy=True)
    )
    # Independent layout: rows sorted by rollout index, one global width.
    rows = sorted(((i, e, r) for e in exps for r, i in enumerate(e.index)), key=lambda t: t[0])
    width = max(e.action_mask.shape[1] for e in exps)
    pad = lambda t: torch.nn.functional.pad(t.float(), (0, width - t.shape[0]))
    group = GroupInputs(
        rewards=torch.tensor([REWARDS_BY_INDEX[i] for i, _, _ in rows]),
        group_ids=torch.tensor([i // N_PER_PROMPT for i, _, _ in rows]),
        response_mask=torch.stack([pad(e.action_mask[r]) for _, e, r in rows]),
        old_log_probs=torch.stack([pad(e.action_log_probs[r]) for _, e, r in rows]),
        entropy=torch.stack([pad(e.info[OLD_ENTROPY_KEY][r]) for _, e, r in rows]),
    )
    expected = compute_advantages(group, build_method("edge_grpo", method_config))
    by_index = {i: k for k, (i, _, _) in enumerate(rows)}
    checked = 0
    for exp in ours:
        for r, index in enumerate(exp.index):
            w = exp.action_mask.shape[1]
            assert torch.allclose(exp.advantages[r], expected[by_index[index], :w].float(), atol=1e-6), index
            checked += 1
    assert checked == 8
    # Edge-GRPO differs from plain GRPO here (entropy matters), so the test is not vacuous.
    grpo = compute_advantages(group, None)
    assert not torch.allclose(expected, grpo)


class _FakeGroup:
    def __init__(self, per_actor, duplicate_actors=1):
        self.per_actor, self.duplicate_actors = per_actor, duplicate_actors

    def async_run_method(self, method_name):
        assert method_name == "pop_old_entropy"
        return self.per_actor


@pytest.mark.parametrize("duplicate", [1, 2])
def test_rollout_entropy_relay_follows_openrlhf_chunking(monkeypatch, duplicate):
    monkeypatch.setattr(experience_maker.ray, "get", lambda refs: refs)
    exps = _experiences(with_entropy=False)
    ents = [torch.full(e.action_mask.shape, float(k + 1)) for k, e in enumerate(exps)]
    # async_run_method_batch: chunk size ceil(3/2) = 2 -> effective actor 0 got [e0, e1], actor 1 got [e2];
    # ring/TP duplicates of one chunk return the same list.
    per_actor = []
    for chunk in ([ents[0], ents[1]], [ents[2]]):
        per_actor += [chunk] * duplicate
    maker = _maker(EntropyControlSpec(methods=[("steer", {})]))
    maker.actor_model_group = _FakeGroup(per_actor, duplicate)
    maker._attach_old_entropy(exps)
    for k, exp in enumerate(exps):
        assert torch.equal(exp.info[OLD_ENTROPY_KEY], ents[k])

    maker.actor_model_group = _FakeGroup([[ents[1], ents[0]], [ents[2]]])  # wrong shapes -> loud error
    with pytest.raises(RuntimeError, match="does not match action_mask"):
        maker._attach_old_entropy(_experiences(with_entropy=False))


def test_missing_rewards_are_named_with_the_flag_and_the_fix():
    """A reward file that raised leaves OpenRLHF samples with ``rewards=None``; the controller stops there."""
    scored, unscored = NS(rewards=torch.ones(4)), NS(rewards=None)
    msg = experience_maker.missing_rewards_message([scored, unscored, unscored], False, ["/r/reward.py"])
    assert msg.startswith("2 of 3 rollout batches came back without rewards")
    assert "--reward.remote_url /r/reward.py" in msg and "--ckpt.load_enable" in msg
    assert experience_maker.missing_rewards_message([scored, scored], False, ["/r/reward.py"]) == ""
    # a reward model scores the samples in the experience maker: nothing is missing then
    assert experience_maker.missing_rewards_message([unscored], True, None) == ""
