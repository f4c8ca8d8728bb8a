"""Full rollout batches only (veRL's drop_last) and the scheduler length: hand-computed step counts, and
OpenRLHF 0.11.2's own SamplesGenerator and PPOTrainer.fit loop driven on CPU with a fake rollout engine."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch

pytest.importorskip("openrlhf")

from openrlhf.trainer.ppo_utils import samples_generator as openrlhf_samples  # noqa: E402
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402

from openrlhf_steer.integration import experience_maker  # noqa: E402
from openrlhf_steer.integration.rollout_batches import (  # noqa: E402
    RolloutPlan,
    drop_partial_last_batch,
    openrlhf_max_steps,
)

# -- step arithmetic -------------------------------------------------------------------------------------


def test_posadv_full_data_counts_full_batches_only():
    # Pos-Adv App. B: 17,398 prompts, rollout batch 256 x 16 responses, train batch 1,024 (4 updates per rollout)
    plan = RolloutPlan(17398, 256, 16, 1024, num_episodes=10)
    assert plan.rollout_steps_per_episode == 67  # 67 x 256 = 17,152; the 246 left over are dropped
    assert plan.rollout_steps == 670
    assert plan.optimizer_steps == 2680  # 670 x 4096 / 1024
    # OpenRLHF's count: 17,398 x 16 = 278,368 samples // 1,024 = 271 per episode x 10 (the short batch included)
    assert openrlhf_max_steps(17398, 16, 1024, 10, 1) == 2710


def test_table3_smallest_subset_counts():
    plan = RolloutPlan(616, 256, 16, 1024, num_episodes=227)  # 616 = 2 x 256 + 104
    assert (plan.rollout_steps_per_episode, plan.rollout_steps, plan.optimizer_steps) == (2, 454, 1816)
    assert openrlhf_max_steps(616, 16, 1024, 227, 1) == 9 * 227  # 9,856 // 1,024 = 9 per episode
    # the episodes that give the full-data run's 670 rollout steps: 670 / 2 = 335
    assert RolloutPlan(616, 256, 16, 1024, num_episodes=335).optimizer_steps == 2680


def test_max_epochs_multiplies_the_optimizer_steps_not_the_rollouts():
    plan = RolloutPlan(17398, 512, 8, 512, num_episodes=5, max_epochs=2)  # 33 full batches of 512 per episode
    assert plan.rollout_steps == 165
    assert plan.optimizer_steps == 165 * 2 * 8  # 4,096 samples per rollout = 8 windows of 512, twice


def test_too_few_prompts_for_one_batch_names_the_flag():
    with pytest.raises(ValueError, match=r"--rollout\.batch_size 256.*--data\.max_samples"):
        RolloutPlan(200, 256, 16, 1024, num_episodes=1)
    with pytest.raises(ValueError, match=r"--train\.batch_size = 0"):
        RolloutPlan(600, 256, 16, 0, num_episodes=1)


@pytest.mark.parametrize(
    "result, expected",
    [
        ((["s"] * 3, None, 2, True), ([], None, 2, True)),  # short and exhausted: dropped, the episode ends
        ((["s"] * 4, None, 2, True), (["s"] * 4, None, 2, True)),  # a full last batch trains
        ((["s"] * 3, 50.0, 4, False), (["s"] * 3, 50.0, 4, False)),  # short, prompts remain: left alone
        (([], None, 0, True), ([], None, 0, True)),
    ],
)
def test_drop_partial_last_batch(result, expected):
    assert drop_partial_last_batch(result, samples_per_rollout=4) == expected


# -- OpenRLHF's generator and fit loop, on a fake rollout engine ---------------------------------------------

N_SAMPLES = 2
ROLLOUT_BATCH = 4
TRAIN_BATCH = 4


def _collate(items):
    return ["source"] * len(items), [f"p{i}" for i in items], [str(i) for i in items], [None] * len(items)


def _args(num_episodes: int, dynamic_filtering: bool):
    return NS(
        rollout=NS(batch_size=ROLLOUT_BATCH, n_samples_per_prompt=N_SAMPLES, vllm_generate_batch_size=None),
        train=NS(batch_size=TRAIN_BATCH, num_episodes=num_episodes, max_epochs=1),
        vllm=NS(enable_sleep=False),
        algo=NS(dynamic_filtering_enable=dynamic_filtering, dynamic_filtering_range=(0.0, 1.0)),
        eval=NS(steps=float("inf")),
        ckpt=NS(path="/nonexistent/ckpt", load_enable=False),
        logger=NS(wandb=NS(key=None), tensorboard_dir=None),
    )


def _fake_engine(monkeypatch, generator, solved_prompts=()):
    """One "ref" per prompt holding its N_SAMPLES responses; prompts in ``solved_prompts`` score 1 on every
    response (dynamic filtering drops them); the rest score 0 and 1."""

    def dispatch(prompts, labels, images=None, **kwargs):
        return [[(label, k) for k in range(N_SAMPLES)] for label in labels]

    def experience(response, **kwargs):
        label, k = response
        score = 1.0 if int(label) in solved_prompts else float(k % 2)
        return NS(prompt=int(label), scores=torch.tensor([score]))

    monkeypatch.setattr(openrlhf_samples, "ray", NS(wait=lambda refs, **kw: (refs[:1], refs[1:]), get=lambda r: r))
    generator._dispatch_prompts_to_vllm = dispatch
    generator._process_response_into_experience = experience


def _trainer(monkeypatch, num_prompts, num_episodes, drop, dynamic_filtering=False, solved_prompts=()):
    """EntropyControlPPOTrainer built through its own constructor, OpenRLHF's __init__ replaced by the
    attributes that fit() and the generator read (no tokenizer, no Ray, no models)."""
    base = experience_maker.EntropyControlPPOTrainer.__mro__[1]
    args = _args(num_episodes, dynamic_filtering)

    def base_init(self, strategy, **generate_kwargs):
        self.strategy, self.args = strategy, strategy.args
        self.prompts_dataloader = StatefulDataLoader(
            list(range(num_prompts)), batch_size=1, shuffle=False, collate_fn=_collate
        )
        generator = openrlhf_samples.SamplesGenerator(strategy, self.prompts_dataloader, None, None, [])
        _fake_engine(monkeypatch, generator, solved_prompts)
        self.samples_generator = generator
        self.generate_kwargs = generate_kwargs
        self.max_steps = openrlhf_max_steps(num_prompts, N_SAMPLES, TRAIN_BATCH, num_episodes, 1)
        self.experience_maker = None
        self.eval_dataloader = self.wandb_logger = self.tensorboard_logger = None
        self.best_eval_metric_key, self.best_eval_metric_value, self._latest_eval_metric_value = "", 0.0, None

    monkeypatch.setattr(base, "__init__", base_init)
    trainer = experience_maker.EntropyControlPPOTrainer(NS(args=args), drop_partial_rollout_batch=drop)
    trained = []

    def train_step(rollout_samples, global_step):
        trained.append(sorted({s.prompt for s in rollout_samples}))
        return {}, global_step + 1

    trainer.train_step = train_step
    trainer.save_logs_and_checkpoints = lambda *a, **k: None
    return trainer, trained


def test_short_last_batch_is_dropped_and_the_episode_ends(monkeypatch):
    trainer, trained = _trainer(monkeypatch, num_prompts=10, num_episodes=2, drop=True)  # 10 = 2 x 4 + 2
    assert trainer.get_max_steps() == 8  # floor(10 / 4) = 2 rollouts x 8 samples / 4 per step x 2 episodes
    trainer.fit()
    batches = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert trained == batches * 2  # prompts 8, 9 (4 samples) are dropped in both episodes


def test_option_off_keeps_openrlhf_behaviour(monkeypatch):
    trainer, trained = _trainer(monkeypatch, num_prompts=10, num_episodes=2, drop=False)
    assert trainer.get_max_steps() == 10  # OpenRLHF's 10 x 2 // 4 x 2, kept
    trainer.fit()
    assert trained == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2  # the short batch trains


def test_a_whole_number_of_batches_loses_nothing(monkeypatch):
    trainer, trained = _trainer(monkeypatch, num_prompts=8, num_episodes=1, drop=True)
    assert trainer.get_max_steps() == 4  # = OpenRLHF's 8 x 2 // 4
    trainer.fit()
    assert trained == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_dynamic_filtering_refills_before_the_last_batch_is_dropped(monkeypatch):
    # prompt 1 is filtered (all responses correct); OpenRLHF replaces it with prompt 4, so the second batch is
    # 5..8 and only prompt 9, once the dataloader is drained, makes a short batch that is dropped
    trainer, trained = _trainer(
        monkeypatch, num_prompts=10, num_episodes=1, drop=True, dynamic_filtering=True, solved_prompts={1}
    )
    trainer.fit()
    assert trained == [[0, 2, 3, 4], [5, 6, 7, 8]]


def test_too_few_prompts_fail_at_construction(monkeypatch):
    with pytest.raises(ValueError, match="fewer than --rollout.batch_size"):
        _trainer(monkeypatch, num_prompts=3, num_episodes=1, drop=True)
