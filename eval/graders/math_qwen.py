"""Answer equivalence of Qwen2.5-Math's evaluation toolkit (``evaluation/grader.py: math_equal``).

Our own code with the toolkit's semantics, in its order (tests/test_eval_grader_qwen_rules.py pins each):
  1. case-insensitive text equality;
  2. a gold letter A-E against the last stand-alone capital letter A-E of the prediction;
  3. when both read as numbers (commas dropped, ``float``; ``5%`` / ``5\\%`` as 0.05): equal within
     rel. 1e-4 to the gold, gold/100 or gold*100, and that decides;
  4. a ``pmatrix`` prediction against a non-matrix gold: the gold's ``{a,b}`` groups become matrices;
  5. bracket leniency: outer ``[]``/``()`` stripped when the prediction is bracketed (unless the gold
     opens with the other kind), then every ``{}()`` removed, and compared as text;
  6. both bracketed: the insides split at every comma, element-wise (no verdict if that fails);
  7. ``pmatrix``/``bmatrix`` element-wise;
  8. equations ``a=b`` as ``a-(b)`` (either sign); a short ``k=`` side against a plain gold;
  9. symbolic: parsed expressions equal as text, ``==``, ``equals`` / ``simplify(a-b)==0``, equal
     equation sides, numerically within rel. 1e-4, or matrices equal after rounding to 3 places.

Parsing, as the toolkit does: sympy's ``parse_latex``, then ``parse_expr``, then its vendored
``latex2sympy2`` 1.9. sympy's LaTeX parser is used as is (its antlr version check lifted, see
``_sympy_latex``); the vendored package cannot be installed beside Math-Verify, so ``_lists_and_matrices``
stands in for it with the behaviour it was observed to have. Exponent towers and huge exponents are not
handed to sympy (C code that no timeout interrupts); the toolkit times such samples out, also wrong.
Checked against the toolkit itself (sympy 1.12, antlr 4.11, vendored latex2sympy2) on 3,789 response/gold
pairs: no verdict differs (tests/test_eval_grader_qwen_toolkit.py).
"""

from __future__ import annotations

import math
import re
from typing import Optional

REL_TOL = 1e-4
CHOICES = ("A", "B", "C", "D", "E")
_CHOICE_WORD = re.compile(r"\b(A|B|C|D|E)\b")


# ----------------------------------------------------------------------------- numbers and choices
def parse_number(text) -> Optional[float]:
    """``float`` of the text without commas; ``N%`` / ``N\\%`` as N/100; None if not a number."""
    t = str(text).replace(",", "")
    try:
        return float(t)
    except ValueError:
        pass
    if t.endswith("%"):
        t = t[:-1]
        if t.endswith("\\"):
            t = t[:-1]
        try:
            return float(t) / 100
        except ValueError:
            pass
    return None


def numbers_close(prediction: float, gold: float, include_percentage: bool = True) -> bool:
    candidates = (gold / 100, gold, gold * 100) if include_percentage else (gold,)
    return any(math.isclose(c, prediction, rel_tol=REL_TOL) for c in candidates)


def choice_letter(prediction: str) -> str:
    """The grader's ``choice_answer_clean``: the last stand-alone A-E (upper-cased), else the text."""
    p = prediction.strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = _CHOICE_WORD.findall(p.upper())
    p = letters[-1] if letters else p.strip().strip(".")
    return p.rstrip(".").rstrip("/")


# ----------------------------------------------------------------------------- structure
def _gold_as_matrices(gold: str) -> str:
    """``{a,b}`` groups of the gold (greedy, first "{" to last "}") as ``\\begin{pmatrix}a\\b\\end{pmatrix}``;
    "" when there is none, as in the toolkit."""
    groups = re.findall(r"\{.*,.*\}", gold.strip())
    return ", ".join("\\begin{pmatrix}" + g.strip("{}").replace(",", "\\") + "\\end{pmatrix}" for g in groups)


def _without_brackets(prediction: str, gold: str) -> tuple:
    p, g = prediction, gold
    if (p.startswith("[") and p.endswith("]") and not g.startswith("(")) or (
        p.startswith("(") and p.endswith(")") and not g.startswith("[")
    ):
        p, g = p.strip("[]()"), g.strip("[]()")
    for ch in "{}()":
        p, g = p.replace(ch, ""), g.replace(ch, "")
    return p, g


_BRACKETED = re.compile(r"(\(|\[).+(\)|\])")
_MATRIX_OPEN = ("\\begin{pmatrix}", "\\begin{bmatrix}")
_MATRIX_CLOSE = ("\\end{pmatrix}", "\\end{bmatrix}")


def _is_matrix(s: str) -> bool:
    return s.startswith(_MATRIX_OPEN) and s.endswith(_MATRIX_CLOSE)


def _matrix_rows(s: str) -> list:
    inner = s[len("\\begin{pmatrix}") : -len("\\end{pmatrix}")]
    return [row.strip() for row in inner.split("\\\\") if row.strip()]


def _matrices_equal(prediction: str, gold: str, include_percentage: bool, is_close: bool, parse) -> bool:
    p_rows, g_rows = _matrix_rows(prediction), _matrix_rows(gold)
    if len(p_rows) != len(g_rows):
        return False
    for p_row, g_row in zip(p_rows, g_rows):
        p_cells, g_cells = p_row.split("&"), g_row.split("&")
        if len(p_cells) != len(g_cells):
            return False
        if not all(math_equal(a, b, include_percentage, is_close, parse) for a, b in zip(p_cells, g_cells)):
            return False
    return True


# ----------------------------------------------------------------------------- the comparison
def math_equal(prediction, reference, include_percentage: bool = True, is_close: bool = True, parse=None) -> bool:
    """True if ``prediction`` and ``reference`` (both already extracted and normalised) are equal.

    ``parse`` turns a string into a sympy object for the symbolic step (the string itself when nothing reads
    it); None is the toolkit's own parser chain (``parse_latex``, ``parse_expr``, latex2sympy2). The STEER
    authors' copy of this function differs only there (``math_steer``)."""
    parse = parse or _parse
    if prediction is None or reference is None:
        return False
    if str(prediction).strip().lower() == str(reference).strip().lower():
        return True
    if reference in CHOICES and choice_letter(str(prediction)) == reference:
        return True
    p_num, g_num = parse_number(prediction), parse_number(reference)
    if p_num is not None and g_num is not None:
        if not is_close:
            return any(c == p_num for c in ((g_num / 100, g_num, g_num * 100) if include_percentage else (g_num,)))
        return numbers_close(p_num, g_num, include_percentage)
    if not prediction:
        return False
    gold, pred = str(reference).strip(), str(prediction).strip()
    if "pmatrix" in pred and "pmatrix" not in gold:
        gold = _gold_as_matrices(gold)
    p_flat, g_flat = _without_brackets(pred, gold)
    if p_flat.lower() == g_flat.lower():
        return True
    if _BRACKETED.match(pred) and _BRACKETED.match(gold):
        p_items, g_items = pred[1:-1].split(","), gold[1:-1].split(",")
        if len(p_items) == len(g_items) and all(
            math_equal(a, b, include_percentage, is_close, parse) for a, b in zip(p_items, g_items)
        ):
            return True
    if _is_matrix(pred) and _is_matrix(gold) and _matrices_equal(pred, gold, include_percentage, is_close, parse):
        return True
    if pred.count("=") == 1 and gold.count("=") == 1:
        p_diff = "{} - ({})".format(*(side.strip() for side in pred.split("=")))
        g_diff = "{} - ({})".format(*(side.strip() for side in gold.split("=")))
        if symbolic_equal(p_diff, g_diff, parse) or symbolic_equal(f"-({p_diff})", g_diff, parse):
            return True
    elif pred.count("=") == 1 and len(pred.split("=")[0].strip()) <= 2 and "=" not in gold:
        if math_equal(pred.split("=")[1], gold, include_percentage, is_close, parse):
            return True
    elif gold.count("=") == 1 and len(gold.split("=")[0].strip()) <= 2 and "=" not in pred:
        if math_equal(pred, gold.split("=")[1], include_percentage, is_close, parse):
            return True
    return symbolic_equal(pred, gold, parse)


# ----------------------------------------------------------------------------- symbolic
_TOWER_RE = re.compile(r"\d\s*\^\s*\{\s*\d+\s*\^|\d\s*\^\s*\d+\s*\^|\d\s*\*\*\s*\(?\s*\d+\s*\*\*")
_BIG_EXPONENT_RE = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d{4,}")


def _too_expensive(s: str) -> bool:
    return bool(_TOWER_RE.search(s) or _BIG_EXPONENT_RE.search(s)) or len(s) > 2000


def _sympy_latex(s: str):
    """sympy's ``parse_latex``, the toolkit's first parser. sympy refuses antlr runtimes other than 4.11, but
    its 4.11-generated parser runs unchanged on Math-Verify's 4.13 (same serialized-ATN format, checked
    against sympy 1.12 + antlr 4.11); we lift that check and the generated code's version warning."""
    from sympy.parsing.latex import _parse_latex_antlr as antlr_latex

    if not getattr(antlr_latex, "_runtime_check_lifted", False):
        real_version = antlr_latex.version
        antlr_latex.version = lambda dist: "4.11" if dist == "antlr4-python3-runtime" else real_version(dist)
        for generated in (antlr_latex.LaTeXLexer, antlr_latex.LaTeXParser):
            if generated is not None:
                generated.checkVersion = lambda self, version: None
        antlr_latex._runtime_check_lifted = True
    return antlr_latex.parse_latex(s)


def python_expr(s: str):
    from sympy.parsing.sympy_parser import parse_expr

    return parse_expr(s)


_MATRIX = re.compile(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", flags=re.DOTALL)
_MATRIX_ROW_BREAK = re.compile(r"\\\\|\\(?![a-zA-Z])")  # "\\\\", or "\\" once the caller halved it
_LIST_WRAPPERS = (("\\left[", "\\right]"), ("[", "]"), ("{", "}"))


def _lists_and_matrices(s: str):
    """Stand-in for the toolkit's vendored latex2sympy2 1.9 (not installable beside Math-Verify), tried when
    sympy's parser and ``parse_expr`` fail. Probed on every gold and prediction of our math sets, it read only
    all-digit strings with leading zeros, ``pmatrix`` matrices and comma lists (bare, ``$,$``-separated, or
    in ``[]``/``\\left[\\right]``/``{}``, elements parsed as LaTeX); it refused everything else (tuples in
    parentheses, ``\\$``, ``{,}``, unions), and so does this."""
    from sympy import Integer, Matrix

    t = s.strip()
    if t.isdigit():
        return Integer(int(t))
    matrix = _MATRIX.fullmatch(t)
    if matrix:
        rows = [row for row in _MATRIX_ROW_BREAK.split(matrix.group(1)) if row.strip()]
        return Matrix([[_sympy_latex(cell) for cell in row.split("&")] for row in rows])
    for left, right in _LIST_WRAPPERS:
        if t.startswith(left) and t.endswith(right):
            t = t[len(left) : -len(right)]
            break
    items = _split_top_level_commas(t.replace("$", ""))
    if len(items) < 2:
        raise ValueError("not a list or a matrix")
    return [_sympy_latex(item) for item in items]


def _split_top_level_commas(s: str) -> list:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    return items + [s[start:]]


_PARSERS = (_sympy_latex, python_expr, _lists_and_matrices)


def parse_first(s: str, parsers) -> object:
    """What the first of ``parsers`` that reads ``s`` returns (each tried on ``s`` with ``\\\\`` as ``\\``, then
    as written, as the toolkit's ``symbolic_equal`` does); ``s`` itself if none reads it."""
    for parser in parsers:
        for text in (s.replace("\\\\", "\\"), s):
            try:
                return parser(text)
            except Exception:
                continue
    return s


def _parse(s: str):
    return s if _too_expensive(s) else parse_first(s, _PARSERS)


def symbolic_equal(a: str, b: str, parse=None) -> bool:
    from sympy import N, simplify

    parse = parse or _parse
    x, y = parse(a), parse(b)
    checks = (
        lambda: str(x) == str(y) or x == y,
        lambda: x.equals(y) or simplify(x - y) == 0,
        lambda: abs(x.lhs - x.rhs).equals(abs(y.lhs - y.rhs)),
        lambda: math.isclose(float(N(x)), float(N(y)), rel_tol=REL_TOL),
        lambda: x.shape == y.shape and x.applyfunc(lambda v: round(v, 3)).equals(y.applyfunc(lambda v: round(v, 3))),
    )
    for check in checks:
        try:
            if check():
                return True
        except Exception:
            continue
    return False
