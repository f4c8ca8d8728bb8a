"""The launcher's flags (generated from the registry), OpenRLHF's own parser via check_args, the
consistency checks between our methods and OpenRLHF's flags, and the version guard."""

from __future__ import annotations

import dataclasses
import json

import pytest

from openrlhf_steer.integration.flags import (
    EntropyArgsError,
    EntropyControlSpec,
    build_parser,
    method_field_flags,
    split_argv,
)
from openrlhf_steer.methods import available_methods, get_method_class

# methods.md §1.6 (STEER scripts: Qwen2.5-Math-7B, DAPO-Math-17k, lambda 0.8/1.0 exp, clip 0.2/0.28, dual clip 10,
# no KL, no entropy loss, n=8, 512 prompts/rollout, 32 prompts = 256 responses per update, micro-batch 8,
# lr 1e-6, response 3072, 10 epochs) in OpenRLHF 0.11.2 flags (openrlhf.md §4.1).
STEER_PAPER_COMMAND = """
--entropy.method steer --entropy.steer.lambda_min 0.8 --entropy.steer.lambda_max 1.0 --entropy.steer.mapping exp
--entropy.steer.prob_power 2 --entropy.steer.entropy_source old --entropy.steer.stat_scope micro_batch
--actor.num_nodes 1 --actor.num_gpus_per_node 8
--vllm.num_engines 8 --vllm.tensor_parallel_size 1 --vllm.gpu_memory_utilization 0.6
--train.colocate_all --vllm.enable_sleep --ds.enable_sleep --vllm.enforce_eager --vllm.sync_backend nccl
--actor.model_name_or_path Qwen/Qwen2.5-Math-7B
--reward.remote_url /abs/openrlhf_steer/integration/rewards/math_reward.py
--data.prompt_dataset /abs/dapo_math_17k.jsonl --data.input_key prompt --data.label_key answer
--data.apply_chat_template
--rollout.n_samples_per_prompt 8 --rollout.batch_size 512 --rollout.micro_batch_size 16
--train.batch_size 256 --train.micro_batch_size 8 --train.max_epochs 1 --train.num_episodes 10 --train.seed 42
--actor.adam.lr 1e-6 --actor.lr_scheduler constant --actor.lr_warmup_ratio 0
--actor.eps_clip_low_high 0.2 0.28 --actor.dual_clip 10.0 --algo.advantage.estimator group_norm
--algo.kl.init_coef 0
--rollout.temperature 1.0 --rollout.top_p 1.0
--data.max_len 4096 --rollout.max_new_tokens 3072
--ds.zero_stage 3 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable
--ckpt.output_dir /abs/out --ckpt.path /abs/ckpt --ckpt.save_steps 20 --ckpt.save_hf
--logger.tensorboard_dir /abs/tb
""".split()
OPENRLHF_PART = STEER_PAPER_COMMAND[STEER_PAPER_COMMAND.index("--actor.num_nodes") :]


def _replace(argv, flag, *values):
    """argv with ``flag``'s values replaced (or the flag appended)."""
    out = list(argv)
    if flag in out:
        i = out.index(flag)
        j = i + 1
        while j < len(out) and not out[j].startswith("--"):
            j += 1
        out[i + 1 : j] = list(values)
    else:
        out += [flag, *values]
    return out


# ------------------------------------------------------------------------------------ our parser
def test_every_method_field_has_a_typed_flag_with_help():
    parser = build_parser()
    options = {opt: action for action in parser._actions for opt in action.option_strings}
    for name in available_methods():
        cls = get_method_class(name)
        for f in dataclasses.fields(cls.config_cls):
            flag = f"--entropy.{name}.{f.name}"
            assert flag in options, flag
            help_text = options[flag].help
            assert f.metadata.get("help", "").replace("%", "%%")[:40] in help_text
            assert "default" in help_text.lower()
    steer_flags = {ff.flag: ff for ff in method_field_flags("steer")}
    assert steer_flags["--entropy.steer.lambda_min"].kwargs["type"]("0.7") == 0.7
    assert steer_flags["--entropy.steer.prob_power"].kwargs["type"]("1") == 1
    assert "Hao et al." in get_method_class("steer").paper or "2510.10150" in get_method_class("steer").paper


def test_split_argv_keeps_openrlhf_flags_in_order():
    spec, rest = split_argv(
        [
            "--actor.adam.lr",
            "1e-6",
            "--entropy.method",
            "steer,clip_higher",
            "--entropy.steer.lambda_min",
            "0.7",
            "--entropy.clip_higher.eps_high",
            "0.3",
            "--train.seed",
            "3",
        ]
    )
    assert spec.names == ["steer", "clip_higher"]
    assert spec.methods == [("steer", {"lambda_min": 0.7}), ("clip_higher", {"eps_high": 0.3})]
    assert rest == ["--actor.adam.lr", "1e-6", "--train.seed", "3"]
    again = EntropyControlSpec.from_json(spec.to_json())
    assert again.methods == spec.methods and again.chunk_rows == 1024
    method = again.build_method()  # composed
    assert {m.name for m in method.methods} == {"steer", "clip_higher"}


def test_default_is_grpo_and_none_disables():
    assert split_argv([])[0].names == ["grpo"]
    assert not split_argv(["--entropy.method", "none"])[0].enabled


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--entropy.method", "steeer"], "unknown method"),
        (["--entropy.method", "grpo", "--entropy.steer.lambda_min", "0.7"], "add it there"),
        (["--entropy.method", "steer", "--entropy.steer.lambda_mn", "0.7"], "did you mean --entropy.steer.lambda_min"),
        (["--entropy.method", "steer", "--entropy.steer.lambda_min", "1.5"], "lambda_min"),
        (["--entropy.method", "steer,steer"], "twice"),
        (["--entropy.chunk_rows", "0"], "chunk_rows"),
    ],
)
def test_bad_flags_name_the_fix(argv, needle):
    with pytest.raises(EntropyArgsError) as err:
        split_argv(argv)
    assert needle in str(err.value)


def test_bad_typed_value_is_the_same_error_naming_the_flag():
    with pytest.raises(EntropyArgsError) as err:
        split_argv(["--entropy.method", "steer", "--entropy.steer.lambda_min", "abc"])
    assert "--entropy.steer.lambda_min" in str(err.value) and "abc" in str(err.value)


# ------------------------------------------------------------------------------------ OpenRLHF's parser
openrlhf = pytest.importorskip("openrlhf")


def test_check_args_steer_paper_command_through_openrlhf_parser():
    from openrlhf_steer.integration import check_args

    args = check_args(STEER_PAPER_COMMAND)
    # values parsed by OpenRLHF's own parser (hierarchical namespace) ...
    assert args.actor.model_name_or_path == "Qwen/Qwen2.5-Math-7B"
    assert args.actor.adam.lr == 1e-6
    assert list(args.actor.eps_clip_low_high) == [0.2, 0.28] and args.actor.dual_clip == 10.0
    assert args.rollout.n_samples_per_prompt == 8 and args.rollout.batch_size == 512
    assert args.train.batch_size == 256 and args.train.micro_batch_size == 8
    assert args.algo.kl.init_coef == 0 and args.algo.advantage.estimator == "group_norm"
    # ... and its validation ran: remote_url became a list, vllm_generate_batch_size defaulted.
    assert args.reward.remote_url == ["/abs/openrlhf_steer/integration/rewards/math_reward.py"]
    assert args.rollout.vllm_generate_batch_size == 512
    assert args.critic.model_name_or_path is None
    # our spec rides along; STEER (old entropy) does not switch on OpenRLHF's entropy pass
    spec = json.loads(args.entropy_spec)
    assert spec["methods"] == [
        [
            "steer",
            {
                "lambda_min": 0.8,
                "lambda_max": 1.0,
                "mapping": "exp",
                "prob_power": 2,
                "entropy_source": "old",
                "stat_scope": "micro_batch",
            },
        ]
    ]
    assert args.actor.entropy_coef is None


def test_check_args_current_entropy_method_sets_log_only_coef():
    from openrlhf_steer.integration import check_args

    argv = _replace(STEER_PAPER_COMMAND, "--entropy.steer.entropy_source", "current")
    assert check_args(argv).actor.entropy_coef == 0.0
    argv = ["--entropy.method", "entropy_loss"] + OPENRLHF_PART
    assert check_args(argv).actor.entropy_coef == 0.0


def test_check_args_openrlhf_rejects_its_own_bad_flag(capsys):
    from openrlhf_steer.integration import check_args

    with pytest.raises(SystemExit):
        check_args(STEER_PAPER_COMMAND + ["--prompt_max_len", "1024"])  # pre-0.10 flag, gone in 0.11.2
    assert "unrecognized arguments: --prompt_max_len" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="n_samples_per_prompt > 1"):  # OpenRLHF's own validation
        check_args(_replace(STEER_PAPER_COMMAND, "--rollout.n_samples_per_prompt", "1"))


@pytest.mark.parametrize(
    "changes,needle",
    [
        ([("--entropy.method", "clip_cov"), ("--actor.policy_loss_type", "gspo")], "--actor.policy_loss_type"),
        (
            [("--entropy.method", "w_reinforce"), ("--algo.advantage.estimator", "reinforce")],
            "--algo.advantage.estimator",
        ),
        ([("--entropy.method", "kl_penalty")], "--algo.kl.use_loss"),
    ],
)
def test_inconsistent_combinations_are_refused(changes, needle):
    from openrlhf_steer.integration import EntropyArgsError, check_args

    argv = ["--entropy.method", "grpo"] + OPENRLHF_PART
    for flag, value in changes:
        argv = _replace(argv, flag, value)
    with pytest.raises(EntropyArgsError, match=needle.replace(".", r"\.")):
        check_args(argv)


def test_version_guard_names_the_supported_release():
    from openrlhf_steer.integration import OpenRLHFVersionError, require_openrlhf

    assert require_openrlhf() == "0.11.2"
    with pytest.raises(OpenRLHFVersionError, match=r"openrlhf==0\.11\.2") as err:
        require_openrlhf(lambda: "0.11.0")
    assert "0.11.0 is installed" in str(err.value)
    with pytest.raises(OpenRLHFVersionError, match="not installed"):
        require_openrlhf(lambda: None)


def test_version_guard_runs_in_check_args(monkeypatch):
    from openrlhf_steer.integration import OpenRLHFVersionError, check_args, version

    monkeypatch.setattr(version, "installed_openrlhf_version", lambda: "0.10.4")
    with pytest.raises(OpenRLHFVersionError, match="0.10.4"):
        check_args(STEER_PAPER_COMMAND)


def test_help_lists_ours_then_openrlhf(capsys):
    from openrlhf_steer.apps.train import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    ours, theirs = out.index("--entropy.steer.lambda_min"), out.index("--actor.model_name_or_path")
    assert ours < theirs
    assert "--rollout.n_samples_per_prompt" in out


def test_launch_validates_first_then_runs_openrlhf_main_with_our_classes(monkeypatch, capsys):
    """The real launcher path up to OpenRLHF's train(): two passes through OpenRLHF's __main__, the
    second with our actor/controller classes installed (Ray itself is not started here)."""
    import openrlhf.trainer.ppo_trainer as ppo_trainer
    import openrlhf.trainer.ray.ppo_actor as ppo_actor

    from openrlhf_steer.integration import launch as launch_module
    from openrlhf_steer.integration import openrlhf_main
    from openrlhf_steer.integration.rewards import math_reward_path

    passes = []
    real = openrlhf_main.run_openrlhf_main

    def recording(argv, on_args, stop=False):
        captured = real(argv, on_args, stop=True)  # never start Ray in a unit test
        passes.append((stop, captured))
        return captured

    monkeypatch.setattr(openrlhf_main, "run_openrlhf_main", recording)
    monkeypatch.setattr(ppo_actor, "PolicyModelActor", ppo_actor.PolicyModelActor)  # restored after the test
    monkeypatch.setattr(ppo_trainer, "PPOTrainer", ppo_trainer.PPOTrainer)
    argv = _replace(STEER_PAPER_COMMAND, "--reward.remote_url", "openrlhf_steer:math")
    assert launch_module.launch(argv) == 0
    assert [stop for stop, _ in passes] == [True, False]
    final_args = passes[1][1]
    assert final_args.reward.remote_url == [math_reward_path()]
    assert json.loads(final_args.entropy_spec)["methods"][0][0] == "steer"
    from openrlhf_steer.integration import experience_maker, ray_actors

    assert ppo_actor.PolicyModelActor is ray_actors.EntropyControlPolicyModelActorRemote
    assert ppo_trainer.PPOTrainer is experience_maker.EntropyControlPPOTrainerRemote
    assert "[openrlhf-steer] methods=steer" in capsys.readouterr().out


def test_launch_refuses_inconsistent_flags_before_starting_anything(monkeypatch, capsys):
    from openrlhf_steer.integration import launch as launch_module

    argv = ["--entropy.method", "w_reinforce"] + _replace(OPENRLHF_PART, "--algo.kl.init_coef", "0.01")
    assert launch_module.launch(argv) == 2
    assert "KL-in-reward" in capsys.readouterr().err


def test_check_args_pos_adv_entropy_guided_with_clip_higher():
    """Pos-Adv-Reweight (Jin et al.) entropy-guided schedule composed with clip-higher."""
    from openrlhf_steer.integration import check_args
    from openrlhf_steer.integration.args import effective_loss_config, spec_from_args

    argv = [
        "--entropy.method",
        "pos_adv_reweight,clip_higher",
        "--entropy.pos_adv_reweight.schedule",
        "entropy",
        "--entropy.pos_adv_reweight.entropy_target",
        "0.2",
        "--entropy.pos_adv_reweight.step_size",
        "0.05",
        "--entropy.clip_higher.eps_high",
        "0.28",
    ] + _replace(OPENRLHF_PART, "--actor.eps_clip_low_high", "0.2", "0.2")
    args = check_args(argv)
    spec = spec_from_args(args)
    assert spec.methods == [
        ("pos_adv_reweight", {"schedule": "entropy", "entropy_target": 0.2, "step_size": 0.05}),
        ("clip_higher", {"eps_high": 0.28}),
    ]
    needs = spec.needs
    assert needs.controller and needs.old_entropy  # lambda follows the rollout-policy entropy each step
    cfg = effective_loss_config(args, spec.build_method())
    assert (cfg.eps_low, cfg.eps_high, cfg.dual_clip) == (0.2, 0.28, 10.0)  # the method's eps_high wins


def test_method_none_runs_openrlhf_unpatched(monkeypatch):
    import openrlhf.trainer.ray.ppo_actor as ppo_actor

    from openrlhf_steer.integration import launch as launch_module
    from openrlhf_steer.integration import openrlhf_main

    calls = []
    real = openrlhf_main.run_openrlhf_main
    monkeypatch.setattr(
        openrlhf_main,
        "run_openrlhf_main",
        lambda argv, on_args, stop=False: calls.append(real(argv, on_args, stop=True)),
    )
    original = ppo_actor.PolicyModelActor
    monkeypatch.setattr(ppo_actor, "PolicyModelActor", original)
    assert launch_module.launch(["--entropy.method", "none"] + OPENRLHF_PART) == 0
    assert len(calls) == 1 and not hasattr(calls[0], "entropy_spec")
    assert ppo_actor.PolicyModelActor is original


def test_builtin_reward_shorthand_both_spellings():
    from openrlhf_steer.integration.flags import expand_builtin_rewards
    from openrlhf_steer.integration.rewards import math_reward_path

    assert expand_builtin_rewards(["--reward.remote_url", "openrlhf_steer:math", "--x", "1"]) == [
        "--reward.remote_url",
        math_reward_path(),
        "--x",
        "1",
    ]
    assert expand_builtin_rewards(["--reward.remote_url=openrlhf_steer:math", "--x"]) == [
        f"--reward.remote_url={math_reward_path()}",
        "--x",
    ]
    assert expand_builtin_rewards(["--reward.remote_url", "http://rm:5000"]) == [
        "--reward.remote_url",
        "http://rm:5000",
    ]


def test_worker_helpers_load_neither_the_driver_bootstrap_nor_the_launcher():
    """Ray workers import integration.args for spec_from_args / effective_loss_config: a fresh interpreter
    that imports it has loaded neither the runpy bootstrap, the launcher nor OpenRLHF."""
    import subprocess
    import sys

    code = (
        "import sys, openrlhf_steer.integration.args as a; "
        "assert callable(a.spec_from_args) and callable(a.effective_loss_config); "
        "print(sorted(m for m in sys.modules if m.endswith(('.openrlhf_main', '.launch')) or m == 'openrlhf'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
