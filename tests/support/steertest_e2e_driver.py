"""Driver of the e2e runs (test support): one local Ray cluster, several ``openrlhf-steer train`` runs.

Used by ``make e2e`` (tests/test_openrlhf_e2e.py) and by ``reproduce/<table>.sh --smoke``, which runs each
row's training command through it (reproduce/repro_smoke.py).

``python steertest_e2e_driver.py PLAN.json``: the plan lists runs ``{"name", "argv"}``; each run is
``openrlhf_steer.apps.cli.main(["train", *argv])`` (OpenRLHF's own ``train()``), with only the vLLM
engine actors and the weight broadcast replaced (:mod:`steertest_rollout_engine`) and the CUDA-only
calls of :mod:`steertest_cpu_ray`. Writes ``{"name", "rc", "error", "seconds"}`` per run to
``plan["results"]`` (JSON lines).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


# Set for the driver by driver_env and passed on to every Ray worker.
CPU_SETTINGS = {
    "TORCHDYNAMO_DISABLE": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",  # a tiny model gains nothing from threads and the cores are shared
    "OPENRLHF_STEER_REWARD_WORKERS": "1",
}
REPORT_ENV = "STEERTEST_E2E_REPORT"


def driver_env(report_path, with_stubs: bool = True, base=None) -> dict:
    """The environment to start this driver with: tests/support (and, unless ``with_stubs`` is False, the
    flash_attn / vllm import stubs) first on PYTHONPATH, the CPU settings, the report file, and no
    ``RAY_ADDRESS`` (the driver always starts its own local cluster)."""
    env = {k: v for k, v in dict(os.environ if base is None else base).items() if k != "RAY_ADDRESS"}
    paths = [HERE] + ([os.path.join(HERE, "stubs")] if with_stubs else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(CPU_SETTINGS)
    env[REPORT_ENV] = str(report_path)
    return env


def _start_ray(plan) -> None:
    import ray

    forwarded = ("PYTHONPATH", REPORT_ENV, *CPU_SETTINGS)
    env = {key: os.environ[key] for key in forwarded if key in os.environ}
    env["DS_ACCELERATOR"] = "cpu"
    ray.init(
        num_cpus=plan.get("num_cpus", 4),
        num_gpus=plan.get("num_gpus", 2),
        include_dashboard=False,
        log_to_driver=True,
        runtime_env={"env_vars": env, "worker_process_setup_hook": "steertest_cpu_ray.setup_worker"},
    )


def _remove_placement_groups() -> None:
    """OpenRLHF's RayActorGroup reserves a placement group for a multi-GPU actor group and never frees it
    (its driver exits after one run); free them so the next run in this cluster can get the GPUs."""
    from ray._raylet import PlacementGroupID
    from ray.util import placement_group_table, remove_placement_group
    from ray.util.placement_group import PlacementGroup

    for pg_id, info in placement_group_table().items():
        if info.get("state") != "REMOVED":
            remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(pg_id)))


def main(plan_path: str) -> int:
    import ray

    with open(plan_path) as handle:
        plan = json.load(handle)
    sys.path.insert(0, HERE)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that Ray is shut down below
    _start_ray(plan)
    try:
        _run_all(plan)
    finally:
        ray.shutdown()
    return 0


def _run_all(plan) -> None:
    import openrlhf.trainer.ray as openrlhf_ray
    from steertest_rollout_engine import create_standin_engines

    from openrlhf_steer.apps.cli import main as cli_main

    openrlhf_ray.create_vllm_engines = create_standin_engines  # train_ppo_ray imports the name from here
    for run in plan["runs"]:
        start, error, rc = time.time(), None, None
        print(f"==== e2e run {run['name']}", flush=True)
        try:
            rc = cli_main(["train", *run["argv"]])
        except BaseException as exc:  # noqa: BLE001 - every failure is the run's result
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        _remove_placement_groups()
        result = {"name": run["name"], "rc": rc, "error": error, "seconds": round(time.time() - start, 1)}
        with open(plan["results"], "a") as handle:
            handle.write(json.dumps(result) + "\n")
        print(f"==== e2e run {run['name']} done: rc={rc} error={None if error is None else error[:300]}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
