"""Answer extraction and normalisation of Qwen2.5-Math's evaluation toolkit (``evaluation/parser.py``).

Our own code with the toolkit's exact semantics, because the ``qwen`` grader must return the toolkit's
verdicts, quirks included (each is pinned by a test in tests/test_eval_grader_qwen_rules.py):

* extraction (``extract_answer``): the first "final answer is $...$. I hope" (Minerva), else the text
  after the last "boxed" (brace-matched; ``\\boxed 5`` up to the next ``$``), else the text after the
  last "he answer is" / "final answer is", else the last number;
* normalisation (``normalize_answer``, the toolkit's ``strip_string``): LaTeX spellings, a trailing
  ``\\text{...}`` from its first ``\\text{`` on, MathQA unit words anywhere (also single letters such as
  ``a``, ``c``, ``m``, ``s``; skipped for Minerva Math), number words ("two" -> 2, "007" -> 7), every
  "and" and every ``x=``/``y=``/``z=`` removed, ``j`` -> ``i`` when there is no ``i``, ``2.00`` -> ``2``,
  a short ``k=`` prefix dropped, ``\\frac12`` and ``1/2`` -> ``\\frac{1}{2}``. It is not idempotent, and
  the toolkit applies it twice to predictions (once in extraction, once in ``run_execute``).

Thousands separators written ``10{,}000`` are left alone (sympy's LaTeX parser later reads them as 10).
"""

from __future__ import annotations

import re
from typing import Optional

from .math_number_words import convert_number_words

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
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched), or ``\\boxed x`` form.

    Used to read gold answers out of reference solutions (not by the Qwen extraction below)."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    rest_index = start + len(cmd)
    # "\\boxed 5" (no braces): the token after the space
    if text.startswith(" ", rest_index):
        tail = text[rest_index + 1 :]
        token = re.split(r"[\s$]", tail, maxsplit=1)[0]
        return token or None
    brace = text.find("{", rest_index)
    if brace < 0 or text[rest_index:brace].strip():
        return None
    close = _match_braces(text, brace)
    if close is None:
        return None
    return text[brace + 1 : close]


# ----------------------------------------------------------------------------- extraction
_LAST_NUMBER = re.compile(r"-?\d*\.?\d+")
_MINERVA_OPEN, _MINERVA_CLOSE = "final answer is $", "$. I hope"


def _after_last_boxed(text: str) -> str:
    """The toolkit's box reading: everything after the last "boxed"; a brace group is read up to its
    closing brace (or to the end when unbalanced); otherwise up to the next ``$``."""
    tail = text.split("boxed")[-1]
    if not tail:
        return ""
    if tail[0] != "{":
        return tail.split("$")[0].strip()
    depth, end = 1, len(tail)
    for i in range(1, len(tail)):
        depth += {"{": 1, "}": -1}.get(tail[i], 0)
        if depth == 0:
            end = i
            break
    return tail[1:end]


def extract_answer(response: str, keep_units: bool = False) -> str:
    """The toolkit's ``extract_answer`` for the free-form math sets; ``keep_units`` is its Minerva Math
    setting (unit words are not stripped). Returns the normalised answer, "" if none is found."""
    text = response.replace("\u043a\u0438", "")  # stray "ки" step markers of some model outputs
    if _MINERVA_OPEN in text and _MINERVA_CLOSE in text:
        answer = text.split(_MINERVA_OPEN, 1)[1].split(_MINERVA_CLOSE, 1)[0].strip()
    elif "boxed" in text:
        answer = _after_last_boxed(text)
        if not text.split("boxed")[-1]:
            return ""  # "...boxed" at the very end: the toolkit returns before normalising
    elif "he answer is" in text:
        answer = text.split("he answer is")[-1].strip()
    elif "final answer is" in text:
        answer = text.split("final answer is")[-1].strip()
    elif "\u7b54\u6848\u662f" in text:  # Chinese "the answer is": the first one, up to a blank line
        answer = text.split("\u7b54\u6848\u662f")[1].strip().split("\n\n")[0].strip()
    else:
        numbers = _LAST_NUMBER.findall(text.replace(",", ""))
        answer = numbers[-1] if numbers else ""
    answer = re.sub(r"\n\s*", "", answer)
    if answer.startswith(":"):  # one character each, in this order
        answer = answer[1:]
    if answer.endswith("."):
        answer = answer[:-1]
    if answer.endswith("/"):
        answer = answer[:-1]
    return normalize_answer(answer, keep_units=keep_units)


# ----------------------------------------------------------------------------- normalisation
# MathQA's unit words, in the toolkit's order (order and repeats matter: each is a regex applied in turn;
# "." inside them is a regex wildcard), then the same list with "s" appended.
_BASE_UNITS = """
east|degree|mph|kmph|ft|m sqaure| m east|sq m|deg|mile|q .|monkey|prime|ratio|profit of rs|rd|o
gm|p . m|lb|tile|per|dm|lt|gain|ab|way|west|a .|b .|c .|d .|e .|f .|g .|h .|t|a|h|no change|men
soldier|pie|bc|excess|st|inches|noon|percent|by|gal|kmh|c|acre|rise|a . m|th|π r 2|sq|mark|l|toy
coin|sq . m|gallon|° f|profit|minw|yr|women|feet|am|pm|hr|cu cm|square|v â € ™|are|rupee|rounds
cubic|cc|mtr|s|ohm|number|kmph|day|hour|minute|min|second|man|woman|sec|cube|mt|sq inch|mp
∏ cm ³|hectare|more|sec|unit|cu . m|cm 2|rs .|rs|kg|g|month|km|m|cm|mm|apple|liter|loss|yard
pure|year|increase|decrease|d|less|Surface|litre|pi sq m|s .|metre|meter|inch
"""
UNIT_TEXTS = tuple(u for line in _BASE_UNITS.strip("\n").split("\n") for u in line.split("|"))
UNIT_TEXTS = UNIT_TEXTS + tuple(u + "s" for u in UNIT_TEXTS)
_UNIT_PATTERNS = tuple(re.compile(r"(^|\W)" + u + r"($|\W)") for u in UNIT_TEXTS)
_STRIPPED_KEYS = ("x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to")


def _remove_units(s: str) -> str:
    for _ in range(2):
        for pattern in _UNIT_PATTERNS:
            without = pattern.sub(r"\1\2", s)
            if without != "":
                s = without
    return s


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{b}`` -> ``\\frac{1}{b}``; unchanged if a ``\\frac`` has < 2
    characters after it."""
    head, *parts = s.split("\\frac")
    out = head
    for part in parts:
        out += "\\frac"
        if part[:1] == "{":
            out += part
            continue
        if len(part) < 2:
            return s
        first, second, rest = part[0], part[1], part[2:]
        out += "{" + first + "}" + (second if second == "{" else "{" + second + "}") + rest
    return out


def _slash_to_frac(s: str) -> str:
    """``a/b`` with integer (or sqrt-bearing) parts written canonically -> ``\\frac{a}{b}``."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = (p if "sqrt" in p else int(p) for p in parts)
    except ValueError:
        return s
    if f"{a}/{b}" != s:
        return s
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def normalize_answer(answer: str, keep_units: bool = False) -> str:
    """The toolkit's ``strip_string``; ``keep_units`` is its ``skip_unit`` (Minerva Math)."""
    s = str(answer).strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "")
    s = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", s)
    s = s.replace("\\end{array}", "\\end{pmatrix}").replace("bmatrix", "pmatrix")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\{", "{").replace("\\}", "}")
    # a trailing unit: from the first "\text{" that reaches a "}" at the very end
    without_text = re.sub(r"\\text\{.*?\}$", "", s).strip()
    if without_text and without_text != s:
        s = without_text
    if not keep_units:
        s = _remove_units(s)
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = convert_number_words(s)
    s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
    for key in _STRIPPED_KEYS:
        s = s.replace(key, "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("+\\inity", "\\infty")
    s = s.replace("and", "").replace("\\mathbf", "")
    s = re.sub(r"\\mbox\{.*?\}", "", s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")
    s = re.sub(r"(\d+)\.0*([^\d])", r"\1\2", s)
    s = re.sub(r"(\d+)\.0*$", r"\1", s)
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    return _slash_to_frac(s)


# ----------------------------------------------------------------------------- multiple choice
_CHOICE_TRIGGERS = ("choice is", "answer is")
_CHOICE_WORD = re.compile(r"\b(A|B|C|D|E)\b")


def choice_from_response(response: str) -> str:
    """The toolkit's ``parser.choice_answer_clean``: a letter A-E read from a whole response (the first
    after the last "answer is"/"choice is", else the last one; a few-shot echo is cut at a blank line)."""
    text = response.strip("\n")
    if any(text.count(t) > 1 for t in _CHOICE_TRIGGERS):
        text = text.split("\n\n")[0]
    pieces = re.split("|".join(_CHOICE_TRIGGERS), text)
    after_trigger = len(pieces) > 1
    if after_trigger:
        text = pieces[-1]
    text = text.strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = _CHOICE_WORD.findall(text.upper())
    if letters:
        chosen = letters[0] if after_trigger else letters[-1]
    else:
        chosen = text.strip().strip(".")
    return chosen.rstrip(".").rstrip("/")


def only_choice_letters(text: str) -> bool:
    return all(c in "ABCDE" for c in text)
