"""Answer extraction and string normalisation for math responses (pure functions, no sympy).

Written for this project following the semantics of Qwen2.5-Math's ``parser.py`` (research notes
eval.md §2.2): the answer is the minerva-style "final answer is $...$. I hope", else the last
``\\boxed{}``, else the text after "the answer is" / "final answer is", else the last number;
``normalize_answer`` then canonicalises LaTeX (``\\dfrac`` -> ``\\frac``, units and ``\\text`` removed,
``0.5`` for ``.5``, ``\\frac12`` -> ``\\frac{1}{2}``, trailing ``.0`` dropped, ``x = 3`` -> ``3`` ...).
"""
from __future__ import annotations

import re
from typing import Optional

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def _match_braces(text: str, open_index: int) -> Optional[int]:
    """Index of the brace closing the one at ``open_index`` (or None if unbalanced)."""
    depth = 0
    for i in range(open_index, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def last_boxed_content(text: str) -> Optional[str]:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched), or ``\\boxed x`` form."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    rest_index = start + len(cmd)
    # "\boxed 5" (no braces): the token after the space
    if text.startswith(" ", rest_index):
        tail = text[rest_index + 1:]
        token = re.split(r"[\s$]", tail, maxsplit=1)[0]
        return token or None
    brace = text.find("{", rest_index)
    if brace < 0 or text[rest_index:brace].strip():
        return None
    close = _match_braces(text, brace)
    if close is None:
        return None
    return text[brace + 1:close]


_NUMBER_RE = re.compile(r"-?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?|-?\.\d+")


def extract_answer(response: str, keep_units: bool = False) -> str:
    """The final answer of a model response, Qwen2.5-Math style; "" if nothing is found."""
    text = response.replace("\u043a\u0438", "")  # stray Cyrillic "ки" tokens in some model outputs
    answer: Optional[str] = None
    minerva = re.findall(r"final answer is \$(.+?)\$\. I hope", text, flags=re.S)
    if minerva:
        answer = minerva[-1].strip()
    elif "boxed" in text or "\\fbox" in text:
        answer = last_boxed_content(text)
        if answer is None:
            answer = ""
    else:
        for marker in ("he answer is", "final answer is", "\u7b54\u6848\u662f"):
            if marker in text:
                answer = text.split(marker)[-1].strip()
                break
        if answer is None:
            numbers = _NUMBER_RE.findall(text.replace(",", ""))
            answer = numbers[-1] if numbers else ""
    answer = re.sub(r"\n\s*", "", answer).strip()
    answer = answer.lstrip(":").strip()
    answer = answer.rstrip(".").rstrip("/").strip()
    return normalize_answer(answer, keep_units=keep_units)


# ----------------------------------------------------------------------------- normalisation
_UNIT_WORDS = (
    "degrees", "degree", "cm", "centimeters", "centimeter", "meters", "meter", "mm", "km", "inches", "inch",
    "feet", "foot", "ft", "units", "unit", "square", "sq", "cubic", "dollars", "dollar", "cents", "cent",
    "hours", "hour", "minutes", "minute", "seconds", "second", "mph", "miles", "mile", "pounds", "pound",
    "students", "people", "points", "days", "day", "years", "year", "ways", "times",
)


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{b}`` -> ``\\frac{1}{b}``."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
            continue
        a, rest = part[0], part[1:]
        if rest.startswith("{"):
            out += "{" + a + "}" + rest
        else:
            out += "{" + a + "}{" + rest[0] + "}" + rest[1:]
    return out


def _fix_sqrt(s: str) -> str:
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def _slash_to_frac(s: str) -> str:
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        return f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    return s


def normalize_answer(answer: str, keep_units: bool = False) -> str:
    """Canonical string form of an answer (LaTeX clean-up; idempotent)."""
    s = str(answer).strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", " ")
    s = re.sub(r"\\\\+", r"\\", s)
    s = re.sub(r"\\(text|textbf|mbox|mathrm|mathbf)\s+\{", r"\\\1{", s)  # "\text {cm}" -> "\text{cm}"
    # matrices: one spelling
    s = re.sub(r"\\begin\{array\}\{[^{}]*\}", r"\\begin{pmatrix}", s)
    s = s.replace("\\end{array}", "\\end{pmatrix}").replace("bmatrix", "pmatrix")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("\\{", "{").replace("\\}", "}")  # set braces: {1,2} then compares like (1,2)
    # a trailing \text{...} is a unit ("5 \text{ cm}") unless it is the whole answer ("\text{Evelyn}")
    stripped = re.sub(r"\\text\{[^{}]*\}$", "", s).strip()
    if stripped and stripped != s and not stripped.endswith(("^", "_")):
        s = stripped
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\circ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = s.replace("\\displaystyle", "")
    if not keep_units:
        s = re.sub(r"\\(?:text|mbox|mathrm)\{\s*(?:" + "|".join(_UNIT_WORDS) + r")[^}]*\}", "", s)
        s = re.sub(r"\s+(?:" + "|".join(_UNIT_WORDS) + r")(?:\^?\d)?\s*$", "", s)
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm|mathbf)\{([^{}]*)\}", r"\1", s)
    # "x = 1, y = 2" -> "1, 2"; "x \in [0, 1]" -> "[0, 1]" (a name at the start of an item only)
    s = re.sub(r"(^|[,(\[{;])\s*[xyz]\s*(?:=|\\in\b|\\to\b)\s*", r"\1", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = re.sub(r"(?<![\\a-zA-Z])inf(?![a-zA-Z])", r"\\infty", s)
    s = re.sub(r"\s+and\s+", ",", s)
    # "2.00" -> "2", "(1.0, 2.50)" -> "(1, 2.50)"
    s = re.sub(r"(\d)\.0+(?=\D|$)", r"\1", s)
    if s.startswith("."):
        s = "0" + s
    # "x = 3" / "k=5" -> the right-hand side when the left side is a short name
    if s.count("=") == 1:
        lhs, rhs = s.split("=")
        if len(lhs.strip()) <= 2 and rhs.strip():
            s = rhs
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    # complex numbers written with j
    if "j" in s and "i" not in s and re.fullmatch(r"[\d.+\-*/()j]+", s):
        s = s.replace("j", "i")
    s = _fix_fracs(s)
    s = _slash_to_frac(s)
    s = s.rstrip(".")
    return s
