"""Entry point of one math-grading worker process (``python -m openrlhf_steer_eval.graders.math_worker``).

Started by ``MathGraderPool`` as a plain subprocess, so it works from any caller: scripts without a
``__main__`` guard, notebooks, Ray actors. Protocol: pickled messages over fd 0 (tasks in) and a private
duplicate of fd 1 (results out); the real stdout is pointed at stderr so stray prints cannot corrupt it.
"""

import os
import signal
import sys
from multiprocessing.connection import Connection


def main() -> None:
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed by sympy & co. goes to stderr
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    inbox = Connection(os.dup(0), readable=True, writable=False)
    outbox = Connection(out_fd, readable=False, writable=True)
    from openrlhf_steer_eval.graders.math import grade_answer

    # warm up: the first parse/verify loads antlr and sympy caches (~0.5 s), paid before "ready"
    grade_answer("\\boxed{\\frac{1}{2}}", "0.5", "math_verify")
    grade_answer("\\boxed{x+1}", "1+x", "qwen")
    grade_answer("\\boxed{x+1}", "1+x", "steer_both")  # loads latex2sympy2_extended's parser
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            batch = inbox.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        for index, grader, response, gold, keep_units in batch:
            outbox.send((index, grade_answer(response, gold, grader, keep_units).to_dict()))


if __name__ == "__main__":
    main()
