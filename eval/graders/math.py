"""Math grading: Math-Verify and a Qwen2.5-Math-style grader, single-sample and in a process pool.

Public API (also used by the OpenRLHF reward function):

    from openrlhf_steer_eval.graders.math import grade_answer, MathGraderPool

    v = grade_answer(response, gold, grader="math_verify")    # -> Verdict (pure, one sample)
    with MathGraderPool(workers=2, timeout=10.0) as pool:     # worker processes, per-sample timeout
        verdicts = pool.grade_many([(response, gold), ...], grader="qwen")

``grader`` is one of ``MATH_GRADERS``:
  * ``math_verify``: Hugging Face Math-Verify, ``verify(parse(gold), parse(response))`` with the gold in ``$...$``;
  * ``qwen``: Qwen2.5-Math's evaluation toolkit as its ``math_eval.py`` runs it: the extracted prediction
    normalised (twice), the gold normalised once, ``math_equal``, 3 s per sample;
  * ``steer_both``: the STEER authors' validation, DAPO's strict box or the vendored Qwen toolkit on the
    last 300 characters (``math_steer``).

Timeouts: Math-Verify's own parse/verify timeouts use ``signal.alarm``, which only works in a main
thread, so pool workers run every sample in their main thread. On top of that the pool applies an
outer per-sample timeout: a worker that exceeds it is killed and replaced, and the sample is scored
incorrect with ``detail["error"] == "timeout"``. Called from a non-main thread, ``grade_answer`` turns
the inner timeouts off (Math-Verify refuses them there); use the pool when responses are untrusted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait as wait_connections
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .base import GraderConfig, Verdict, register_grader
from .math_qwen import CHOICES, math_equal
from .math_steer import QWEN_TIMEOUT as STEER_QWEN_TIMEOUT, steer_both, steer_math_equal
from .math_text import choice_from_response, extract_answer, normalize_answer, only_choice_letters

INNER_TIMEOUT = 5  # seconds; Math-Verify's default parse/verify timeouts


class _InnerTimeout(BaseException):  # BaseException: sympy swallows Exception internally
    pass


@contextlib.contextmanager
def _time_limit(seconds: Optional[float]):
    """SIGALRM-based limit; a no-op outside the main thread or when seconds is falsy."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise _InnerTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str, limit: Optional[int]) -> tuple:
    """Parsed gold answer; cached because every one of a problem's n responses needs it."""
    from math_verify import parse

    gold_text = gold if ("\\boxed" in gold or "$" in gold) else f"${gold}$"
    parsed = parse(gold_text, parsing_timeout=limit)
    if not parsed:
        parsed = parse("\\boxed{" + gold + "}", parsing_timeout=limit)
    return tuple(parsed)


def _math_verify(response: str, gold: str) -> Tuple[bool, Optional[str], dict]:
    from math_verify import parse, verify  # lazy: sympy/antlr import takes ~1 s

    in_main = threading.current_thread() is threading.main_thread()
    limit = INNER_TIMEOUT if in_main else None
    gold_parsed = list(_parse_gold(gold, limit))
    if not gold_parsed:
        return False, None, {"error": "gold_unparsable", "gold": gold}
    pred = parse(response, parsing_timeout=limit)
    extracted = str(pred[-1]) if pred else None
    correct = bool(verify(gold_parsed, pred, timeout_seconds=limit)) if pred else False
    return correct, extracted, {}


QWEN_TIMEOUT = 3  # seconds; Qwen2.5-Math's evaluate.py scores a math_equal that runs longer as wrong


def _qwen(response: str, gold: str, keep_units: bool = False) -> Tuple[bool, Optional[str], dict]:
    """Qwen2.5-Math ``math_eval.py``: ``run_execute`` normalises the extracted answer a second time;
    ``parse_ground_truth`` normalises the gold once; choice golds read a letter from the response."""
    prediction = normalize_answer(extract_answer(response, keep_units=keep_units), keep_units=keep_units)
    reference = normalize_answer(gold, keep_units=keep_units)
    if reference in CHOICES and prediction not in CHOICES:
        prediction = choice_from_response(response)
    elif only_choice_letters(reference) and not only_choice_letters(prediction):
        prediction = "".join(c for c in prediction if c in CHOICES)
    try:
        with _time_limit(QWEN_TIMEOUT):
            correct = math_equal(prediction, reference)
    except _InnerTimeout:
        return False, prediction, {"error": "timeout"}
    return bool(correct), prediction, {}


def _qwen_equal_within(seconds: float, compare=math_equal):
    """``compare`` that is False past ``seconds`` or on an exception (the STEER authors' subprocess)."""

    def equal(prediction: str, gold: str) -> bool:
        try:
            with _time_limit(seconds):
                return bool(compare(prediction, gold))
        except (Exception, _InnerTimeout):
            return False

    return equal


def _steer_both(response: str, gold: str, keep_units: bool = False) -> Tuple[bool, Optional[str], dict]:
    return steer_both(response, gold, _qwen_equal_within(STEER_QWEN_TIMEOUT, steer_math_equal))


_GRADE_FUNCTIONS = {
    "math_verify": lambda response, gold, keep_units: _math_verify(response, gold),
    "qwen": _qwen,
    "steer_both": _steer_both,  # the STEER authors read every set as "math": keep_units does not apply
}
MATH_GRADERS = tuple(_GRADE_FUNCTIONS)


def grade_answer(response: str, gold: str, grader: str = "math_verify", keep_units: bool = False) -> Verdict:
    """Grade one response against one gold answer. Never raises for a bad response.

    ``keep_units`` (``qwen`` only) keeps unit words in the answers, the toolkit's Minerva Math setting.
    """
    if grader not in MATH_GRADERS:
        raise ValueError(f"grader={grader!r} is not a math grader; choose one of {', '.join(MATH_GRADERS)}")
    if not isinstance(response, str):
        return Verdict(False, None, {"error": f"response is {type(response).__name__}, not str"})
    start = time.perf_counter()
    try:
        correct, extracted, detail = _GRADE_FUNCTIONS[grader](response, str(gold), keep_units)
    except BaseException as exc:  # Math-Verify's TimeoutException subclasses BaseException
        if isinstance(exc, KeyboardInterrupt):
            raise
        name = "timeout" if "Timeout" in type(exc).__name__ else f"{type(exc).__name__}: {exc}"[:300]
        correct, extracted, detail = False, None, {"error": name}
    return Verdict(correct=correct, extracted=extracted, detail=detail, seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- process pool
Task = Tuple[int, str, str, str, bool]  # (index, grader, response, gold, keep_units)


class _Worker:
    """One grading subprocess with a task pipe in and a result pipe out."""

    def __init__(self):
        # the child sees the parent's import path, so it finds this package however the parent found it
        path = os.pathsep.join(p for p in sys.path if p)
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", PYTHONPATH=path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "openrlhf_steer_eval.graders.math_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.sender = Connection(os.dup(self.process.stdin.fileno()), readable=False, writable=True)
        self.conn = Connection(os.dup(self.process.stdout.fileno()), readable=True, writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.pending: List[Task] = []
        self.last_progress = time.monotonic()
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def submit(self, tasks: List[Task]) -> None:
        if not self.pending:  # an idle worker starts its clock now; a busy one keeps the running sample's
            self.last_progress = time.monotonic()
        self.pending.extend(tasks)
        self.sender.send(tasks)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.sender.send(None)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        for c in (self.sender, self.conn):
            with contextlib.suppress(Exception):
                c.close()


class MathGraderPool:
    """Grades many (response, gold) pairs in worker processes with a per-sample outer timeout.

    ``workers=0`` grades in this process (no outer timeout; for debugging). Use as a context
    manager or call ``close()``. Start-up (spawning workers, importing sympy) takes about a second
    and is paid once per pool.
    """

    # Results are drained in batches: waking the parent once per graded sample preempts the workers
    # on a 2-core machine and cost ~6% of throughput (benchmarks/math_grader_throughput.py).
    drain_delay = 0.01  # seconds the parent lets results pile up after the first one arrives

    def __init__(self, workers: int = 2, timeout: float = 10.0, chunk_size: int = 32):
        if workers < 0:
            raise ValueError(f"workers={workers} must be >= 0")
        if timeout <= 0:
            raise ValueError(f"timeout={timeout} must be > 0 seconds")
        self.workers, self.timeout, self.chunk_size = workers, float(timeout), max(1, chunk_size)
        self._pool: List[_Worker] = []
        self.restarts = 0  # workers killed for exceeding the timeout

    # -- lifecycle
    def start(self) -> "MathGraderPool":
        while len(self._pool) < self.workers:
            self._pool.append(_Worker())
        for w in self._pool:
            if not w.ready:
                self._await_ready(w)
        return self

    def _await_ready(self, w: _Worker) -> None:
        if not w.conn.poll(120):
            w.kill()
            raise RuntimeError("math grader worker did not start within 120 s")
        msg = w.conn.recv()
        assert msg[0] == "ready", msg
        w.ready = True

    def close(self) -> None:
        for w in self._pool:
            w.stop()
        for w in self._pool:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.process.wait(timeout=2)
            w.kill()
        self._pool = []

    def __enter__(self) -> "MathGraderPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    # -- grading
    def grade_many(
        self,
        pairs: Sequence[Tuple[str, str]],
        grader: str = "math_verify",
        keep_units: bool = False,
        progress: Optional[str] = None,
    ) -> List[Verdict]:
        """Grade ``pairs`` of (response, gold); results are in input order."""
        if grader not in MATH_GRADERS:
            raise ValueError(f"grader={grader!r} is not a math grader; choose one of {', '.join(MATH_GRADERS)}")
        tasks: List[Task] = [(i, grader, r, str(g), keep_units) for i, (r, g) in enumerate(pairs)]
        return self._run(tasks, progress)

    def grade_tasks(self, items: Iterable[Tuple[str, str, str, bool]], progress: Optional[str] = None) -> List[Verdict]:
        """Mixed graders: items of (grader, response, gold, keep_units)."""
        tasks = [(i, g, r, str(gold), ku) for i, (g, r, gold, ku) in enumerate(items)]
        return self._run(tasks, progress)

    def _run(self, tasks: List[Task], progress: Optional[str]) -> List[Verdict]:
        from tqdm.auto import tqdm

        results: Dict[int, Verdict] = {}
        bar = tqdm(total=len(tasks), desc=progress, disable=progress is None, leave=False)
        if self.workers == 0 or not tasks:
            for index, grader, response, gold, ku in tasks:
                results[index] = grade_answer(response, gold, grader, ku)
                bar.update(1)
            bar.close()
            return [results[i] for i in range(len(tasks))]
        self.start()
        queue = list(reversed(tasks))  # pop() from the end = input order
        try:
            while len(results) < len(tasks):
                for w in self._pool:
                    # keep one chunk queued behind the running one so a worker never waits on us
                    if len(w.pending) <= self.chunk_size // 2 and queue:
                        # smaller chunks near the end keep both workers busy
                        size = max(1, min(self.chunk_size, len(queue) // (2 * len(self._pool)) or 1))
                        w.submit([queue.pop() for _ in range(min(size, len(queue)))])
                busy = [w for w in self._pool if w.pending]
                ready = wait_connections([w.conn for w in busy], timeout=0.2)
                if ready and queue:
                    time.sleep(self.drain_delay)
                for w in busy:
                    if w.conn in ready:
                        try:
                            while w.conn.poll():
                                index, vd = w.conn.recv()
                                results[index] = Verdict.from_dict(vd)
                                w.pending = [t for t in w.pending if t[0] != index]
                                w.last_progress = time.monotonic()
                                bar.update(1)
                        except (EOFError, OSError):
                            self._replace(w, queue, results, bar, reason="worker_died")
                    elif time.monotonic() - w.last_progress > self.timeout:
                        self._replace(w, queue, results, bar, reason="timeout")
                    elif not w.alive():
                        self._replace(w, queue, results, bar, reason="worker_died")
        except BaseException:
            self.close()  # never leave workers behind on Ctrl-C or errors
            raise
        finally:
            bar.close()
        return [results[i] for i in range(len(tasks))]

    def _replace(self, w: _Worker, queue: list, results: Dict[int, Verdict], bar, reason: str) -> None:
        """Kill ``w``; its current sample fails with ``reason``, the rest of its chunk is re-queued."""
        w.kill()
        self.restarts += 1
        if w.pending:
            stuck, rest = w.pending[0], w.pending[1:]
            results[stuck[0]] = Verdict(False, None, {"error": reason}, seconds=self.timeout)
            bar.update(1)
            queue.extend(reversed(rest))
        new = _Worker()
        self._await_ready(new)
        self._pool[self._pool.index(w)] = new


# ----------------------------------------------------------------------------- Grader plug-ins
# The math graders of a run share one pool (one worker start-up instead of two); reference-counted.
_SHARED_POOLS: Dict[Tuple[int, float], List] = {}


def _acquire_pool(workers: int, timeout: float) -> MathGraderPool:
    entry = _SHARED_POOLS.get((workers, timeout))
    if entry is None:
        entry = _SHARED_POOLS[(workers, timeout)] = [MathGraderPool(workers=workers, timeout=timeout), 0]
    entry[1] += 1
    return entry[0]


def _release_pool(pool: MathGraderPool) -> None:
    for key, entry in list(_SHARED_POOLS.items()):
        if entry[0] is pool:
            entry[1] -= 1
            if entry[1] <= 0:
                pool.close()
                del _SHARED_POOLS[key]
            return


class MathGrader:
    """Grader plug-in over problems carrying ``gold_answer`` (see data_math)."""

    def __init__(self, name: str, config: GraderConfig):
        self.name = name
        self.config = config
        self._pool: Optional[MathGraderPool] = _acquire_pool(config.workers, float(config.timeout))

    def grade(self, problems: List[dict], responses: List[List[str]]) -> List[List[Verdict]]:
        from ..data_math import GOLD_KEY

        if len(problems) != len(responses):
            raise ValueError(f"{len(problems)} problems but {len(responses)} response lists")
        pairs, shape = [], []
        for p, rs in zip(problems, responses):
            if GOLD_KEY not in p:
                raise ValueError(f"problem has no {GOLD_KEY!r} field; math graders need a math benchmark loader")
            keep_units = bool(p.get("keep_units", False))
            pairs.extend((self.name, r, p[GOLD_KEY], keep_units) for r in rs)
            shape.append(len(rs))
        flat = self._pool.grade_tasks(pairs, progress=f"grading ({self.name})")
        out, pos = [], 0
        for n in shape:
            out.append(flat[pos : pos + n])
            pos += n
        return out

    def close(self) -> None:
        if self._pool is not None:
            _release_pool(self._pool)
            self._pool = None


register_grader("math_verify", lambda config: MathGrader("math_verify", config))
register_grader("qwen", lambda config: MathGrader("qwen", config))
register_grader("steer_both", lambda config: MathGrader("steer_both", config))
