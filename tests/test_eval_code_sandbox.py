"""The sandbox: limits, isolation and adversarial programs (each must fail, and the next run must work)."""

import os
import uuid

import pytest

from openrlhf_steer_eval.graders import sandbox
from openrlhf_steer_eval.graders.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(
    wall_timeout=1.5, startup_grace=3.0, memory_bytes=512 * sandbox.MiB, max_output_bytes=2 * sandbox.MiB
)


def _assert_healthy():
    """After any adversarial run, a normal program still runs and computes the right answer."""
    r = run_python("a, b = map(int, input().split())\nprint(a * b + 1)", "6 7\n", FAST)
    assert r.status == "ok" and r.value == {"stdout": "43\n", "exit_code": 0, "exception": None}


def _failed(r) -> bool:
    return r.status != "ok" or r.value["exit_code"] != 0 or r.value["exception"] is not None


def test_runs_code_with_stdin_and_reports_isolation():
    r = run_python(
        "import sys\nnums = [int(x) for x in sys.stdin.read().split()]\nprint(sum(nums), max(nums))", "3 9 -4\n", FAST
    )
    assert r.status == "ok"
    assert r.value["stdout"] == "8 9\n"
    assert r.network_isolation in ("netns+hook", "hook")


def test_exit_codes_and_exceptions():
    assert run_python("import sys; print('x'); sys.exit(0)", "", FAST).value == {
        "stdout": "x\n",
        "exit_code": 0,
        "exception": None,
    }
    r = run_python("raise ValueError('boom')", "", FAST)
    assert r.value["exit_code"] == 1 and r.value["exception"] == "ValueError: boom"
    assert run_python("import sys; sys.exit(3)", "", FAST).value["exit_code"] == 3


def test_fresh_working_directory_is_writable_and_removed():
    r = run_python("import os\nopen('f.txt', 'w').write('hi')\nprint(open('f.txt').read(), os.getcwd())", "", FAST)
    text, cwd = r.value["stdout"].split()
    assert text == "hi"
    assert os.path.basename(cwd).startswith("steer-sandbox-")
    assert not os.path.exists(cwd)  # removed after the run


def test_fork_bomb_is_stopped():
    r = run_python("import os\nwhile True:\n    os.fork()", "", FAST)
    assert _failed(r) and "os.fork is disabled" in r.value["exception"]
    r = run_python(
        "import multiprocessing as mp\nps = [mp.Process(target=print) for _ in range(100)]\n[p.start() for p in ps]",
        "",
        FAST,
    )
    assert _failed(r)
    _assert_healthy()


def test_infinite_loop_is_stopped_by_the_time_limit():
    r = run_python("while True:\n    pass", "", FAST)
    assert r.value["exit_code"] == 124 and r.value["exception"].startswith("TestTimeout")
    _assert_healthy()


def test_loop_that_disarms_the_alarm_is_killed_by_the_parent():
    code = (
        "import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "while True:\n    pass"
    )
    r = run_python(code, "", SandboxLimits(wall_timeout=1.0, startup_grace=1.0, cpu_seconds=30))
    assert r.status == "timeout"
    _assert_healthy()


def test_cpu_limit_kills_busy_code():
    code = (
        "import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "while True:\n    pass"
    )
    r = run_python(code, "", SandboxLimits(wall_timeout=20, startup_grace=1.0, cpu_seconds=1))
    assert r.status == "cpu_limit"


def test_huge_allocation_fails_with_memory_error():
    r = run_python("b = bytearray(10**11)\nprint('allocated')", "", FAST)
    assert _failed(r) and r.value["exception"].startswith("MemoryError")
    assert "allocated" not in r.value["stdout"]
    _assert_healthy()


def test_socket_connect_to_localhost_fails():
    r = run_python(
        "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', 22))\nprint('up')", "", FAST
    )
    assert _failed(r) and "up" not in r.value["stdout"]
    assert "socket.connect is disabled" in r.value["exception"]
    _assert_healthy()


def test_network_namespace_has_no_usable_network_even_without_the_hook():
    if sandbox._netns_prefix() == []:
        pytest.skip("unshare is not available here; the audit hook is the only network guard")
    # Inside the namespace the loopback is down: a raw connect fails at the kernel level.
    code = "import _socket\ns = _socket.socket()\ns.settimeout(1)\nprint(s.connect_ex(('127.0.0.1', 22)) != 0)"
    r = run_python(code, "", FAST)
    assert r.value["stdout"] == "True\n" or "disabled" in (r.value["exception"] or "")


def test_write_outside_the_working_directory_is_refused(tmp_path):
    target = tmp_path / f"evil-{uuid.uuid4().hex}.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')", "", FAST)
    assert _failed(r) and "writing outside the working directory" in r.value["exception"]
    r = run_python(f"import os\nfd = os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY)", "", FAST)
    assert _failed(r)
    assert not target.exists()
    # deleting outside is refused too
    keep = tmp_path / "keep.txt"
    keep.write_text("data")
    for code in (
        f"import os; os.remove({str(keep)!r})",
        f"import shutil; shutil.rmtree({str(tmp_path)!r})",
        f"import os; os.rename({str(keep)!r}, 'stolen.txt')",
    ):
        assert _failed(run_python(code, "", FAST))
    assert keep.read_text() == "data"
    _assert_healthy()


def test_os_system_and_subprocess_are_disabled(tmp_path):
    marker = tmp_path / "ran.txt"
    for code in (
        f"import os; os.system('touch {marker}')",
        f"import subprocess; subprocess.run(['touch', {str(marker)!r}])",
        "import os; os.kill(1, 9)",
        "import ctypes; ctypes.CDLL('libc.so.6')",
    ):
        r = run_python(code, "", FAST)
        assert _failed(r) and "disabled" in r.value["exception"], code
    assert not marker.exists()
    _assert_healthy()


def test_huge_output_is_capped():
    r = run_python("while True:\n    print('x' * 100000)", "", FAST)
    assert r.status == "ok" and r.value["exception"].startswith("OutputLimitExceeded")
    assert len(r.value["stdout"]) <= FAST.max_output_bytes // 4
    # writing straight to the descriptor goes nowhere (fd 1 is /dev/null), and time runs out
    r = run_python("import os\nwhile True:\n    os.write(1, b'y' * 100000)", "", FAST)
    assert _failed(r) and "y" not in (r.value or {}).get("stdout", "")
    _assert_healthy()


def test_os_exit_without_result_is_a_crash():
    r = run_python("import os\nos._exit(0)", "", FAST)
    assert r.status == "crashed"
    _assert_healthy()


def test_environment_is_minimal():
    os.environ["STEER_SECRET_TOKEN"] = "hunter2"
    try:
        r = run_python(
            "import os\nprint(os.environ.get('STEER_SECRET_TOKEN'), os.environ['TMPDIR'] == os.getcwd())", "", FAST
        )
    finally:
        del os.environ["STEER_SECRET_TOKEN"]
    assert r.value["stdout"] == "None True\n"


def test_bad_limits_are_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="wall_timeout"):
        SandboxLimits(wall_timeout=0)
    with pytest.raises(ValueError, match="network"):
        SandboxLimits(network="none")
    with pytest.raises(ValueError, match="package.module:function"):
        sandbox.run_driver("no_colon", {})


def test_limits_are_applied_in_the_child():
    code = (
        "import resource as r\n"
        "print(r.getrlimit(r.RLIMIT_AS), r.getrlimit(r.RLIMIT_CPU), r.getrlimit(r.RLIMIT_FSIZE), "
        "r.getrlimit(r.RLIMIT_CORE))"
    )
    limits = SandboxLimits(wall_timeout=2.5, memory_bytes=300 * sandbox.MiB, file_size_bytes=5 * sandbox.MiB)
    r = run_python(code, "", limits)
    mem, fsize = 300 * 1024 * 1024, 5 * 1024 * 1024
    # CPU: ceil(2.5 + 1) = 4 s soft, one more second hard
    assert r.value["stdout"] == f"({mem}, {mem}) (4, 5) ({fsize}, {fsize}) (0, 0)\n"
    r = run_python("import resource as r\nr.setrlimit(r.RLIMIT_AS, (2**40, 2**40))", "", limits)
    assert _failed(r)  # the code cannot raise its own limits back


def test_file_size_limit_stops_big_writes():
    r = run_python(
        "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (3 * 1024 * 1024))\nprint('done')",
        "",
        SandboxLimits(wall_timeout=2, file_size_bytes=1024 * 1024),
    )
    assert _failed(r) and "done" not in (r.value or {}).get("stdout", "")


def test_forged_results_are_rejected():
    # user code writes a fake "everything passed" message on every descriptor it can find, then exits
    code = (
        "import os\nfake = b'{\"ok\": true, \"value\": {\"stdout\": \"hacked\", \"exit_code\": 0, \"exception\": "
        "null}}'\n"
        "for fd in range(3, 20):\n    try:\n        os.write(fd, fake)\n    except OSError:\n        pass\n"
        "os._exit(0)"
    )
    r = run_python(code, "", FAST)
    assert r.status == "crashed" and r.value is None


def test_setup_failures_are_not_scored_as_code_failures():
    r = sandbox.run_driver("openrlhf_steer_eval.no_such_module:run", {}, FAST)
    assert r.status == "setup_error" and "No module named" in r.error
    assert sandbox.self_check().value["stdout"] == "10\n"


def test_custom_driver_from_the_harness_import_path(tmp_path, monkeypatch):
    module = f"steertest_driver_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "def run(payload):\n    return {'twice': payload['x'] * 2, 'tuple': (1, 2)}\n"
        "def fail(payload):\n    raise KeyError('missing')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    r = sandbox.run_driver(f"{module}:run", {"x": 21}, FAST)
    assert r.status == "ok" and r.value == {"twice": 42, "tuple": [1, 2]}  # JSON round trip
    r = sandbox.run_driver(f"{module}:fail", {}, FAST)
    assert r.status == "driver_error" and r.error == "KeyError: 'missing'"


def test_runs_are_reproducible():
    import random
    import subprocess
    import sys

    code = (
        "import random\nprint(hash('entropy'), sorted({'b', 'a'}) == ['a', 'b'], list({'x', 'y', 'z'}), "
        "random.random())"
    )
    first, second = (run_python(code, "", FAST).value["stdout"] for _ in range(2))
    assert first == second
    reference = subprocess.run(
        [sys.executable, "-c", "print(hash('entropy'))"],
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
    ).stdout.strip()
    assert first.split()[0] == reference
    assert first.split()[-1] == repr(random.Random(0).random())


def test_child_never_imports_our_graders_math_as_math():
    r = run_python("import math\nprint(math.__file__.endswith('graders/math.py'), math.sqrt(16))", "", FAST)
    assert r.value["stdout"] == "False 4.0\n"
