"""Qwen2.5-Math-style answer equivalence (``math_equal``), our own implementation.

Semantics follow Qwen2.5-Math ``evaluation/grader.py`` as documented in research notes eval.md §2.2:
  1. case-insensitive string equality after normalisation;
  2. multiple-choice letters ("(A)", "A");
  3. numbers: ``isclose(rel_tol=1e-4)`` against the reference, and with percentage leniency also
     against reference/100 and reference*100 (so 27 ~ 0.27 ~ 2700);
  4. bracket leniency: ``[0,1)`` ~ ``[0,1]`` ~ ``(0,1)`` unless the brackets are clearly meant;
  5. tuples / intervals / matrices element-wise;
  6. equations: ``a = b`` compared as ``a - b`` (and a bare value vs ``x = value``);
  7. symbolic equivalence via sympy (LaTeX parsed with latex2sympy2_extended, which Math-Verify installs).
The symbolic step is the only slow one; callers bound it with a timeout (see graders.math).
"""
from __future__ import annotations

import math
import re
from typing import Optional

from .math_text import normalize_answer

REL_TOL = 1e-4


def _parse_number(s: str) -> Optional[float]:
    t = s.replace(",", "").replace("\\%", "").replace("%", "").strip()
    m = re.fullmatch(r"\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}", t)
    if m:
        den = float(m.group(2))
        return float(m.group(1)) / den if den else None
    m = re.fullmatch(r"(-?)\\frac\{(\d+(?:\.\d+)?)\}\{(\d+(?:\.\d+)?)\}", t)
    if m:
        den = float(m.group(3))
        return (-1 if m.group(1) else 1) * float(m.group(2)) / den if den else None
    try:
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _choice_letter(s: str) -> Optional[str]:
    m = re.fullmatch(r"\(?([A-Ea-e])\)?", s.strip())
    return m.group(1).upper() if m else None


def numbers_close(pred: float, ref: float, include_percentage: bool = True) -> bool:
    candidates = [ref / 100, ref, ref * 100] if include_percentage else [ref]
    return any(math.isclose(pred, c, rel_tol=REL_TOL) for c in candidates)


def _split_top_level(s: str, sep: str = ",") -> list:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _is_sequence(s: str) -> bool:
    return len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and "," in s


def _matrix_rows(s: str) -> Optional[list]:
    m = re.fullmatch(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", s)
    if not m:
        return None
    return [[c.strip() for c in row.split("&")] for row in m.group(1).split("\\") if row.strip()]


def math_equal(prediction: Optional[str], reference: str, include_percentage: bool = True,
               symbolic: bool = True) -> bool:
    """True if ``prediction`` and ``reference`` denote the same answer (both already extracted)."""
    if prediction is None or reference is None:
        return False
    pred, ref = normalize_answer(str(prediction)), normalize_answer(str(reference))
    if not pred or not ref:
        return False
    if pred.lower() == ref.lower():
        return True
    # 2. choices
    ref_choice = _choice_letter(ref)
    if ref_choice is not None:
        return _choice_letter(pred) == ref_choice
    # 3. numbers
    p_num, r_num = _parse_number(pred), _parse_number(ref)
    if p_num is not None and r_num is not None:
        return numbers_close(p_num, r_num, include_percentage)
    # 4. bracket leniency
    p_str, r_str = pred, ref
    if (pred[0] == "[" and pred[-1] == "]" and not ref.startswith("(")) or \
       (pred[0] == "(" and pred[-1] == ")" and not ref.startswith("[")):
        p_str, r_str = pred.strip("[]()"), ref.strip("[]()")
    for ch in "{}()":
        p_str, r_str = p_str.replace(ch, ""), r_str.replace(ch, "")
    if p_str.lower() == r_str.lower():
        return True
    # 5. sequences element-wise
    if _is_sequence(pred) and _is_sequence(ref):
        p_items, r_items = _split_top_level(pred[1:-1]), _split_top_level(ref[1:-1])
        if len(p_items) == len(r_items):
            return all(math_equal(p, r, include_percentage, symbolic) for p, r in zip(p_items, r_items))
        return False
    p_mat, r_mat = _matrix_rows(pred), _matrix_rows(ref)
    if p_mat is not None and r_mat is not None:
        return len(p_mat) == len(r_mat) and all(
            len(pr) == len(rr) and all(math_equal(a, b, include_percentage, symbolic) for a, b in zip(pr, rr))
            for pr, rr in zip(p_mat, r_mat))
    # 6. equations
    if pred.count("=") == 1 and ref.count("=") == 1:
        pl, pr = pred.split("=")
        rl, rr = ref.split("=")
        if symbolic and (_symbolic_equal(f"{pl}-({pr})", f"{rl}-({rr})")
                         or _symbolic_equal(f"-({pl}-({pr}))", f"{rl}-({rr})")):
            return True
    elif pred.count("=") == 1 and len(pred.split("=")[0].strip()) <= 2 and "=" not in ref:
        return math_equal(pred.split("=")[1], ref, include_percentage, symbolic)
    elif ref.count("=") == 1 and len(ref.split("=")[0].strip()) <= 2 and "=" not in pred:
        return math_equal(pred, ref.split("=")[1], include_percentage, symbolic)
    # 7. symbolic
    return symbolic and _symbolic_equal(pred, ref)


def _to_sympy(s: str):
    from latex2sympy2_extended import latex2sympy  # lazy: sympy import is ~0.5 s
    from sympy.parsing.sympy_parser import (implicit_multiplication_application, parse_expr,
                                            standard_transformations)
    plain = s.replace("\\\\", "\\")
    try:
        return parse_expr(plain.replace("^", "**"),
                          transformations=standard_transformations + (implicit_multiplication_application,),
                          evaluate=True)
    except Exception:
        pass
    return latex2sympy(plain)


_TOWER_RE = re.compile(r"\d\s*\^\s*\{\s*\d+\s*\^|\d\s*\^\s*\d+\s*\^|\d\s*\*\*\s*\(?\s*\d+\s*\*\*")
_BIG_EXPONENT_RE = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d{4,}")


def _too_expensive(s: str) -> bool:
    """Exponent towers and huge exponents make sympy compute giant integers in C code that no signal
    can interrupt (e.g. 9^{9^{9^{9}}}); such answers are only compared as strings/numbers."""
    return bool(_TOWER_RE.search(s) or _BIG_EXPONENT_RE.search(s)) or len(s) > 2000


def _symbolic_equal(a: str, b: str) -> bool:
    import sympy

    if _too_expensive(a) or _too_expensive(b):
        return False
    try:
        ea, eb = _to_sympy(a), _to_sympy(b)
    except Exception:
        return False
    try:
        if ea == eb:
            return True
        diff = sympy.simplify(ea - eb)
        if diff == 0:
            return True
    except Exception:
        pass
    try:
        va, vb = complex(sympy.N(ea)), complex(sympy.N(eb))
        # relative tolerance, as math.isclose(rel_tol=1e-4): tiny answers (1e-33) are not "close to 0"
        return math.isfinite(abs(va)) and abs(va - vb) <= REL_TOL * max(abs(va), abs(vb))
    except Exception:
        return False
