"""Full rollout batches only, and an LR schedule sized for the optimizer steps that actually run.

OpenRLHF 0.11.2 trains the last, short rollout batch of every episode (``SamplesGenerator.generate_samples``
returns what is left when the prompt dataloader runs out) and sizes the scheduler with
``len(prompts) * n_samples // train_batch * num_episodes * max_epochs``. With 17,398 prompts = 67 x 256 + 246
the short batch's samples fill no whole gradient-accumulation window, DeepSpeed takes no step on it and its
gradients carry into the next rollout, and the cosine schedule is sized for fewer steps than run, so after its
end the lr climbs back up.

Both papers train with veRL (STEER Sec. 5.1 and App. E.2; Pos-Adv Sec. 4 and App. B), whose train dataloader
drops the last incomplete batch (``drop_last=True`` in ``RayPPOTrainer._create_dataloader``, volcengine/verl
commit 00401103, where ``total_training_steps = len(train_dataloader) * total_epochs``). The default here does
the same: a short last chunk is dropped, the episode ends, and the schedule counts full batches only.
OpenRLHF's prompt dataloader reshuffles every episode on the controller, so a different remainder is left out
each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

logger = logging.getLogger(__name__)

DROP_PARTIAL_ROLLOUT_BATCH = True
DROP_PARTIAL_ROLLOUT_BATCH_HELP = (
    "Drop the last rollout batch of an episode when it is shorter than --rollout.batch_size x "
    "--rollout.n_samples_per_prompt samples, and size the LR schedule for the full batches only. Default on, as "
    "veRL does (drop_last=True); both papers train with veRL (STEER Sec. 5.1, App. E.2; Pos-Adv Sec. 4, App. B). "
    "Off: OpenRLHF 0.11.2's behaviour (the short batch trains; its scheduler count is kept)."
)

GenerateResult = Tuple[List[Any], Optional[float], int, bool]


@dataclass(frozen=True)
class RolloutPlan:
    """The step arithmetic of a run that trains full rollout batches only (veRL's drop_last)."""

    num_prompts: int
    rollout_batch: int  # --rollout.batch_size (prompts per rollout step)
    n_samples_per_prompt: int  # --rollout.n_samples_per_prompt
    train_batch: int  # --train.batch_size (samples per optimizer step)
    num_episodes: int  # --train.num_episodes
    max_epochs: int = 1  # --train.max_epochs (passes over each rollout)

    def __post_init__(self):
        for name, flag in (
            ("rollout_batch", "--rollout.batch_size"),
            ("n_samples_per_prompt", "--rollout.n_samples_per_prompt"),
            ("train_batch", "--train.batch_size"),
            ("num_episodes", "--train.num_episodes"),
            ("max_epochs", "--train.max_epochs"),
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{flag} = {getattr(self, name)}: must be at least 1")
        if self.num_prompts < self.rollout_batch:
            raise ValueError(
                f"{self.num_prompts} training prompts are fewer than --rollout.batch_size {self.rollout_batch}: every "
                "rollout batch would be short and dropped (veRL's drop_last), so nothing would train. Lower "
                "--rollout.batch_size to at most the prompt count, or raise --data.max_samples / add prompts."
            )

    @property
    def samples_per_rollout(self) -> int:
        return self.rollout_batch * self.n_samples_per_prompt

    @property
    def rollout_steps_per_episode(self) -> int:
        return self.num_prompts // self.rollout_batch

    @property
    def rollout_steps(self) -> int:
        return self.rollout_steps_per_episode * self.num_episodes

    @property
    def optimizer_steps(self) -> int:
        """DeepSpeed steps once per ``train_batch`` samples (its accumulation window carries across rollouts).

        Exact when ``samples_per_rollout`` is a multiple of ``train_batch`` (every recipe here: 4,096 / 1,024);
        otherwise the last, partial window of the run takes no step, hence the floor. With dynamic filtering the
        filtered prompts are consumed too, so fewer full batches may run: then this is an upper bound.
        """
        return self.rollout_steps * self.max_epochs * self.samples_per_rollout // self.train_batch


def openrlhf_max_steps(
    num_prompts: int, n_samples_per_prompt: int, train_batch: int, num_episodes: int, max_epochs: int
) -> int:
    """OpenRLHF 0.11.2's scheduler length (``prepare_datasets``), for comparison and for the option off."""
    return num_prompts * n_samples_per_prompt // train_batch * num_episodes * max_epochs


def plan_from_args(args, num_prompts: int) -> RolloutPlan:
    return RolloutPlan(
        num_prompts=int(num_prompts),
        rollout_batch=int(args.rollout.batch_size),
        n_samples_per_prompt=int(args.rollout.n_samples_per_prompt),
        train_batch=int(args.train.batch_size),
        num_episodes=int(args.train.num_episodes),
        max_epochs=int(args.train.max_epochs),
    )


def drop_partial_last_batch(result: GenerateResult, samples_per_rollout: int) -> GenerateResult:
    """``generate_samples``' result, with a short chunk at the end of the episode replaced by no samples.

    Only a chunk that comes with the exhausted flag (dataloader drained, sample buffer empty) is dropped. With
    dynamic filtering OpenRLHF replaces each filtered prompt while prompts remain, so a chunk is short only once
    they run out; a short chunk without the flag is left alone. The flag stays, so OpenRLHF's ``fit`` sees no
    samples and ends the episode; the prompts consumed are still reported.
    """
    samples, pass_rate, prompts_consumed, exhausted = result
    if exhausted and 0 < len(samples) < samples_per_rollout:
        logger.info(
            "dropped the episode's last rollout batch: %d of %d samples (veRL's drop_last)",
            len(samples),
            samples_per_rollout,
        )
        return [], pass_rate, prompts_consumed, True
    return result


def full_batches_only(generate_samples: Callable[..., GenerateResult], samples_per_rollout: int):
    """Wrap a ``SamplesGenerator.generate_samples`` so that it never returns the short last chunk."""

    def generate_full_batches(**generate_kwargs) -> GenerateResult:
        return drop_partial_last_batch(generate_samples(**generate_kwargs), samples_per_rollout)

    generate_full_batches.__wrapped__ = generate_samples
    return generate_full_batches
