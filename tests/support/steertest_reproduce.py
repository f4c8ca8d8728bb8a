"""Helpers for the reproduction-suite tests: put reproduce/ on sys.path, run run_table.main in-process."""

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPRODUCE = REPO / "reproduce"
CONFIGS = sorted((REPRODUCE / "configs").glob("*.yaml"))

if str(REPRODUCE) not in sys.path:
    sys.path.insert(0, str(REPRODUCE))


def load_reward_module():
    """The reward file exactly as OpenRLHF loads it (importlib from its path)."""
    path = REPRODUCE / "rewards" / "dapo_math_reward.py"
    spec = importlib.util.spec_from_file_location("steertest_dapo_reward", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_table(argv):
    """Run reproduce/run_table.py's main in-process; return (exit code, stdout, stderr)."""
    import run_table as rt

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = rt.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def train_commands(stdout):
    """The argv lists of every `[train]` command line a dry run printed."""
    import shlex

    cmds = []
    for line in stdout.splitlines():
        if line.startswith("[train] ") and " -m openrlhf_steer.apps.train " in line:
            cmds.append(shlex.split(line[len("[train] ") :]))
    return cmds
