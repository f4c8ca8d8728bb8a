"""`openrlhf-steer train` as a user runs it.

Fast: ``--help`` lists our flags then OpenRLHF's on a CPU install without vLLM / flash-attn, and a
real run there stops before Ray with the fix.

Slow (``make e2e``): `openrlhf-steer train` through OpenRLHF 0.11.2's own ``train()`` on CPU.

Each run is ``openrlhf_steer.apps.cli.main(["train", ...])`` in one driver process
(tests/support/steertest_e2e_driver.py) sharing one local Ray cluster: OpenRLHF's PPOTrainer
controller actor, its SamplesGenerator, RemoteExperienceMaker, replay buffer and advantage
computation, our policy actor(s) with DeepSpeed ZeRO-2 on gloo, the reward file
``openrlhf_steer:math`` on real MATH-500 problems, tensorboard logging, checkpoints.

Stand-ins, and why:

* the vLLM engine actors and the weight broadcast to them (vLLM cannot run on CPU):
  tests/support/steertest_rollout_engine.py serves OpenRLHF's engine interface with transformers
  generation; ``generate_responses`` and the reward loading are OpenRLHF's own code; rank 0 sends
  the parameters through Ray instead of a NCCL/gloo group made by vLLM's StatelessProcessGroup;
* CUDA-only calls (tests/support/steertest_cpu_ray.py, Ray's worker setup hook):
  ``torch.cuda.synchronize/set_device/empty_cache`` are no-ops and ``current_device()`` is the
  CPU; the DeepSpeed device mesh is built on "cpu"; the replay buffer's unused ``cuda:<n>`` target
  device is the CPU; ``flash_attention_2`` (forced by ``--ds.packing_samples``) is transformers'
  SDPA, which reads packed sequences from the position ids;
* Ray's placement groups that OpenRLHF reserves for a multi-GPU actor group are freed after each run
  (OpenRLHF's driver exits after one run; ours runs several in one cluster);
* the flash_attn / vllm import stubs of tests/support/stubs (OpenRLHF imports them at module level);
* a tiny random Qwen2 with a character tokenizer (tests/support/steertest_evalmodel.py), bf16.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "support" / "stubs"


def _plain_env():
    """The environment of a CPU install: no test stubs on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != STUBS.resolve()
    )
    return env


def _gpu_packages_absent() -> bool:
    code = "import importlib.util as u; print(u.find_spec('vllm') is None and u.find_spec('flash_attn') is None)"
    out = subprocess.run([sys.executable, "-c", code], env=_plain_env(), capture_output=True, text=True, cwd="/")
    return out.stdout.strip() == "True"


@pytest.fixture(scope="module")
def cpu_install():
    if not _gpu_packages_absent():
        pytest.skip("vllm or flash_attn is installed here: not a CPU install")
    return _plain_env()


def test_help_lists_ours_then_openrlhf_without_vllm(cpu_install):
    run = subprocess.run(
        [sys.executable, "-m", "openrlhf_steer.apps.cli", "train", "--help"],
        env=cpu_install,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "No module named" not in out + run.stderr
    ours = out.index("--entropy.steer.lambda_min")
    for flag in (
        "--actor.model_name_or_path",
        "--vllm.num_engines",
        "--algo.advantage.is_correction_level",
        "--actor.policy_loss_type",
    ):
        assert out.index(flag) > ours, flag
    assert "Listed without vllm, flash_attn" in out


def test_run_without_vllm_stops_before_ray_with_the_fix(cpu_install):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrlhf_steer.apps.cli",
            "train",
            "--entropy.method",
            "steer",
            "--actor.model_name_or_path",
            "x",
        ],
        env=cpu_install,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    assert run.returncode == 2
    assert "needs vllm and flash_attn" in run.stderr and "openrlhf-steer[train]" in run.stderr
    assert "ray" not in run.stdout.lower()


def test_run_without_rollout_engines_stops_before_ray(monkeypatch, capsys):
    """OpenRLHF 0.11.2 generates rollouts only with vLLM engines: refused in the check pass, Ray never starts."""
    import ray

    from openrlhf_steer.integration import launch as launch_module

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    argv = [
        "--entropy.method",
        "steer",
        "--actor.model_name_or_path",
        "/abs/model",
        "--reward.remote_url",
        "openrlhf_steer:math",
        "--data.prompt_dataset",
        "/abs/p.jsonl",
        "--rollout.n_samples_per_prompt",
        "4",
        "--algo.advantage.estimator",
        "group_norm",
    ]
    assert launch_module.launch(argv) == 2
    assert "--vllm.num_engines" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- e2e


E2E_TIMEOUT = 1800
PROMPTS = 4  # -> 2 rollout steps of 2 prompts per episode


def _short_problems(data_dir: Path, count: int):
    rows = [json.loads(line) for line in (data_dir / "math500" / "test.jsonl").read_text().splitlines() if line]
    short = [r for r in rows if len(r["problem"]) < 90]
    if len(short) < count:
        pytest.skip("not enough short MATH-500 problems in the shared data")
    return [{"problem": r["problem"], "answer": r["answer"]} for r in short[:count]]


FAILING_REWARD = '''
def reward_func(queries, prompts, labels):
    raise RuntimeError("steertest reward failure: the grader is down")
'''

NAN_REWARD = '''
import torch


def reward_func(queries, prompts, labels):
    nan = torch.full((len(queries),), float("nan"))
    return {"rewards": nan, "scores": nan, "extra_logs": {}}
'''


def _common(root: Path, name: str, model: Path, prompts: Path, reward: str = "openrlhf_steer:math"):
    return [
        "--actor.model_name_or_path",
        str(model),
        "--reward.remote_url",
        reward,
        "--data.prompt_dataset",
        str(prompts),
        "--data.input_key",
        "problem",
        "--data.label_key",
        "answer",
        "--data.apply_chat_template",
        "--data.max_samples",
        str(PROMPTS),
        "--rollout.n_samples_per_prompt",
        "4",
        "--rollout.batch_size",
        "2",
        "--rollout.micro_batch_size",
        "4",
        "--train.batch_size",
        "8",
        "--train.micro_batch_size",
        "4",
        "--train.max_epochs",
        "1",
        "--train.num_episodes",
        "1",
        "--train.seed",
        "3",
        "--vllm.num_engines",
        "1",
        "--vllm.sync_backend",
        "gloo",
        "--actor.num_nodes",
        "1",
        "--actor.num_gpus_per_node",
        "1",
        "--data.max_len",
        "160",
        "--rollout.max_new_tokens",
        "12",
        "--algo.advantage.estimator",
        "group_norm",
        "--algo.kl.init_coef",
        "0",
        "--actor.adam.lr",
        "1e-3",
        "--actor.lr_scheduler",
        "constant",
        "--actor.lr_warmup_ratio",
        "0",
        "--ds.zero_stage",
        "2",
        "--ds.attn_implementation",
        "sdpa",
        "--logger.tensorboard_dir",
        str(root / "tb" / name),
        "--ckpt.output_dir",
        str(root / "out" / name),
        "--ckpt.path",
        str(root / "ckpt" / name),
    ]


def _replace_flag(argv, flag, *values):
    out = list(argv)
    i = out.index(flag)
    j = i + 1
    while j < len(out) and not out[j].startswith("--"):
        j += 1
    out[i + 1 : j] = list(values)
    return out


# name -> (our flags, OpenRLHF flag changes (flag, *values), expected metric names beyond the common ones)
RUNS = {
    "steer_exp": (
        ["--entropy.method", "steer", "--entropy.steer.mapping", "exp"],
        [],
        ["method/omega_abs_max", "method/weight_median", "method/weight_p10", "method/weight_frac_below_0.95"],
    ),
    "steer_binary_dp2_packed": (
        ["--entropy.method", "steer", "--entropy.steer.mapping", "binary", "--entropy.steer.stat_scope", "mini_batch"],
        [
            ("--actor.num_gpus_per_node", "2"),
            ("--train.micro_batch_size", "2"),
            ("--rollout.micro_batch_size", "2"),
            ("--ds.packing_samples",),
        ],
        ["method/omega_abs_max"],
    ),
    "pos_adv_entropy": (
        [
            "--entropy.method",
            "pos_adv_reweight",
            "--entropy.pos_adv_reweight.schedule",
            "entropy",
            "--entropy.pos_adv_reweight.entropy_target",
            "0.2",
            "--entropy.pos_adv_reweight.step_size",
            "0.05",
        ],
        [("--ckpt.save_steps", "1")],
        ["controller/pos_adv_lambda"],
    ),
    "clip_cov": (
        ["--entropy.method", "clip_cov", "--entropy.clip_cov.clip_ratio", "0.2"],
        [],
        ["method/clip_cov_clipped"],
    ),
    "kl_cov": (
        ["--entropy.method", "kl_cov", "--entropy.kl_cov.kl_ratio", "0.2"],
        [],
        ["loss/kl_cov", "method/kl_cov_selected"],
    ),
    "w_reinforce": (["--entropy.method", "w_reinforce"], [], []),
    "edge_grpo": (["--entropy.method", "edge_grpo"], [], []),
    "adaptive_entropy": (["--entropy.method", "adaptive_entropy"], [], ["controller/entropy_coef"]),
    "grpo_is": (
        ["--entropy.method", "grpo"],
        [("--algo.advantage.is_correction_level", "token")],
        ["vllm_kl", "is_filter_ratio"],
    ),
    "grpo_gspo": (
        ["--entropy.method", "grpo"],
        [("--actor.policy_loss_type", "gspo"), ("--actor.eps_clip_low_high", "3e-4", "4e-4")],
        [],
    ),
}
COMMON_METRICS = [
    "loss/total",
    "loss/policy",
    "entropy/mean",
    "clip/frac",
    "ratio/mean",
    "weights/mean",
    "advantages/mean",
    "method/frac_changed",
    "quadrant/zero_adv",
    "policy_loss",
    "reward",
    "reward_correct",
]


def _run_argv(root, name, model, prompts):
    ours, changes, _ = RUNS[name]
    argv = _common(root, name, model, prompts)
    for flag, *values in changes:
        argv = _replace_flag(argv, flag, *values) if flag in argv else argv + [flag, *values]
    return ours + argv


class E2E:
    def __init__(self, root: Path, results, report, log):
        self.root, self.results, self.report, self.log = root, results, report, log

    def scalars(self, name: str):
        """{tag: [(step, value)]} of the run's tensorboard logs."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        runs = [p for p in (self.root / "tb" / name).iterdir() if p.is_dir()]
        out = {}
        for run in sorted(runs):
            acc = EventAccumulator(str(run))
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
        return out


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, data_dir):
    pytest.importorskip("tensorboard")
    from steertest_evalmodel import build_tiny_model

    root = tmp_path_factory.mktemp("e2e")
    model = build_tiny_model(root / "model", seed=0)
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in _short_problems(data_dir, PROMPTS)))
    (root / "failing_reward.py").write_text(FAILING_REWARD)
    (root / "nan_reward.py").write_text(NAN_REWARD)

    runs = [{"name": name, "argv": _run_argv(root, name, model, prompts)} for name in RUNS]
    resume = _run_argv(root, "pos_adv_entropy", model, prompts) + ["--ckpt.load_enable"]
    resume = _replace_flag(resume, "--train.num_episodes", "2")  # the same prompts once more: steps 3 and 4
    resume = _replace_flag(resume, "--logger.tensorboard_dir", str(root / "tb" / "pos_adv_entropy_resumed"))
    runs.insert(list(RUNS).index("pos_adv_entropy") + 1, {"name": "pos_adv_entropy_resumed", "argv": resume})
    for name, reward in (("reward_failure", root / "failing_reward.py"), ("reward_nan", root / "nan_reward.py")):
        argv = _replace_flag(_common(root, name, model, prompts), "--reward.remote_url", str(reward))
        runs.append({"name": name, "argv": ["--entropy.method", "grpo"] + argv})
    return run_plan(root, runs)


def run_plan(root: Path, runs) -> E2E:
    """Run ``runs`` ({name, argv}) one after another in the e2e driver's fresh local Ray cluster under ``root``;
    collect each run's result, the stand-in engine's report and the driver's log."""
    plan = {"results": str(root / "results.jsonl"), "num_cpus": 4, "num_gpus": 2, "runs": runs}
    (root / "plan.json").write_text(json.dumps(plan))

    from steertest_e2e_driver import driver_env

    env = driver_env(root / "report.jsonl")
    support = REPO / "tests" / "support"
    with open(root / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, str(support / "steertest_e2e_driver.py"), str(root / "plan.json")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(root),
        )
        try:
            driver.wait(timeout=E2E_TIMEOUT)
        except subprocess.TimeoutExpired:
            driver.terminate()  # the driver shuts its Ray cluster down on SIGTERM
            driver.wait(timeout=60)
    results = {}
    if (root / "results.jsonl").exists():
        results = {r["name"]: r for r in map(json.loads, (root / "results.jsonl").read_text().splitlines())}
    report = []
    if (root / "report.jsonl").exists():
        report = [json.loads(line) for line in (root / "report.jsonl").read_text().splitlines() if line]
    return E2E(root, results, report, (root / "driver.log").read_text())


def _ok(e2e, name):
    result = e2e.results.get(name)
    assert result is not None, f"run {name} did not report; driver log tail:\n{e2e.log[-4000:]}"
    assert result["rc"] == 0 and result["error"] is None, f"run {name} failed: {result['error']}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS) + ["pos_adv_entropy_resumed"])
def test_run_trains_and_logs_the_documented_metrics(e2e, name):
    _ok(e2e, name)
    scalars = e2e.scalars(name)
    expected = COMMON_METRICS + RUNS[name.replace("_resumed", "")][2]
    missing = [m for m in expected if f"train/{m}" not in scalars]
    assert not missing, f"{name}: metrics missing from tensorboard: {missing}; have {sorted(scalars)}"
    steps = sorted(step for step, _ in scalars["train/loss/total"])
    assert steps == ([3, 4] if name.endswith("_resumed") else [1, 2])
    # OpenRLHF's own policy_loss is the value our loss returned (token-weighted the same way).
    ours, theirs = dict(scalars["train/loss/total"]), dict(scalars["train/policy_loss"])
    for step in steps:
        assert theirs[step] == pytest.approx(ours[step], rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_the_loss_that_ran_was_ours(e2e):
    actors = [r for r in e2e.report if r["event"] == "policy_actor"]
    assert actors, "no policy actor reported"
    assert {r["loss_class"] for r in actors} == {"EntropyControlPolicyLoss"}
    assert {r["trainer_class"] for r in actors} == {"EntropyControlActorPPOTrainer"}
    ranks = {r["rank"] for r in actors if r["run"].endswith("steer_binary_dp2_packed")}
    assert ranks == {0, 1}


@pytest.mark.slow
def test_engine_never_imports_deepspeed_and_gets_new_weights(e2e):
    engine = [r for r in e2e.report if r["event"] == "engine"]
    assert engine, "the stand-in engine reported nothing"
    assert not any(r["deepspeed"] or r["openrlhf_models"] for r in engine)
    assert max(r["weight_version"] for r in engine) >= 1  # the policy's weights reached the engine


@pytest.mark.slow
def test_resume_restores_the_controller_state(e2e):
    import torch

    _ok(e2e, "pos_adv_entropy")
    _ok(e2e, "pos_adv_entropy_resumed")
    # The state saved into OpenRLHF's checkpoint at the end of the first run (read from disk) ...
    step_dir = e2e.root / "ckpt" / "pos_adv_entropy" / "_actor" / "global_step2"
    files = sorted(step_dir.glob("*model_states.pt"))
    assert files, f"no DeepSpeed checkpoint in {step_dir}"
    saved = torch.load(files[0], map_location="cpu", weights_only=False)["entropy_control"]
    assert saved["optimizer_step"] == 2
    # ... equals the state the resumed run restored, and the resumed run's first step used it.
    restored = [r["state"] for r in e2e.report if r["event"] == "restored"]
    assert restored == [json.loads(json.dumps(saved))]
    first_run = dict(e2e.scalars("pos_adv_entropy")["train/controller/pos_adv_lambda"])
    resumed = dict(e2e.scalars("pos_adv_entropy_resumed")["train/controller/pos_adv_lambda"])
    assert resumed[3] == pytest.approx(saved["method"]["lambda"], abs=1e-6)
    assert first_run[1] == pytest.approx(0.0)  # lambda_init, before any update


@pytest.mark.slow
def test_failing_reward_is_reported(e2e):
    result = e2e.results.get("reward_failure")
    assert result is not None and result["error"] is not None
    assert "steertest reward failure: the grader is down" in e2e.log  # the engine's log of the exception
    # the run stops on our controller check, which names the flag and the fix, not on OpenRLHF's later error
    assert "came back without rewards" in result["error"] and "--reward.remote_url" in result["error"]
    assert "reward_model_group is required" not in result["error"]


@pytest.mark.slow
def test_nan_reward_is_reported(e2e):
    result = e2e.results.get("reward_nan")
    assert result is not None and result["error"] is not None
    assert "NaN" in result["error"]
