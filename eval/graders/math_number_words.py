"""English number words to a number string, with the semantics of ``word2number`` 1.1 (``w2n.word_to_num``).

Qwen2.5-Math's ``strip_string`` passes every answer through ``word_to_num`` and keeps the original text
when it raises, so its quirks decide verdicts: words that are not number words are ignored
("two apples" -> 2), an all-digit string loses its leading zeros ("007" -> 7), a lone "point" is 0,
and a hyphen separates words ("twenty-one" -> 21). Our own code, checked case by case against
word2number 1.1 (tests/test_eval_grader_qwen_parity.py).
"""

from __future__ import annotations

from typing import List, Sequence

_UNITS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
VALUES = {
    **{w: i for i, w in enumerate(_UNITS)},
    **{w: 20 + 10 * i for i, w in enumerate(_TENS)},
    "hundred": 100,
    "thousand": 1000,
    "million": 1000000,
    "billion": 1000000000,
}
POINT = "point"
_SCALES = ("billion", "million", "thousand")


class NotANumber(ValueError):
    pass


def _group_value(words: Sequence[str]) -> int:
    """word2number's ``number_formation``: only the first four words count, combined by fixed patterns."""
    n = [VALUES[w] for w in words]
    if len(n) == 4:
        return n[0] * n[1] + n[2] + n[3]
    if len(n) == 3:
        return n[0] * n[1] + n[2]
    if len(n) == 2:
        return n[0] * n[1] if 100 in n else n[0] + n[1]
    if not n:
        raise NotANumber("empty group")  # IndexError in word2number
    return n[0]


def _decimal_value(words: Sequence[str]) -> float:
    if any(w not in _UNITS[:10] for w in words):
        return 0
    return float("0." + "".join(str(VALUES[w]) for w in words))


def word_to_number(text: str):
    """The number ``text`` spells (int or float); raises :class:`NotANumber` where word2number raises."""
    if not isinstance(text, str):
        raise NotANumber("not a string")
    text = text.replace("-", " ").lower()
    if text.isdigit():
        try:
            return int(text)
        except ValueError:  # str.isdigit accepts superscripts that int() refuses
            raise NotANumber(text) from None
    words: List[str] = [w for w in text.split() if w in VALUES or w == POINT]
    if not words:
        raise NotANumber("no number words")
    if any(words.count(w) > 1 for w in (*_SCALES, POINT)):
        raise NotANumber("repeated scale word")
    decimals: List[str] = []
    if POINT in words:
        cut = words.index(POINT)
        words, decimals = words[:cut], words[cut + 1 :]
    at = {s: (words.index(s) if s in words else -1) for s in _SCALES}
    b, m, t = at["billion"], at["million"], at["thousand"]
    if (t > -1 and (t < m or t < b)) or (m > -1 and m < b):
        raise NotANumber("scales out of order")
    total = 0
    if len(words) == 1:
        total = VALUES[words[0]]
    elif words:
        if b > -1:
            total += _group_value(words[:b]) * 1000000000
        if m > -1:
            total += _group_value(words[b + 1 if b > -1 else 0 : m]) * 1000000
        if t > -1:
            start = m + 1 if m > -1 else (b + 1 if b > -1 else 0)
            total += _group_value(words[start:t]) * 1000
        last = len(words) - 1
        if t > -1 and t != last:
            total += _group_value(words[t + 1 :])
        elif m > -1 and m != last:
            total += _group_value(words[m + 1 :])
        elif b > -1 and b != last:
            total += _group_value(words[b + 1 :])
        elif t == -1 and m == -1 and b == -1:
            total += _group_value(words)
    if decimals:
        total += _decimal_value(decimals)
    return total


def convert_number_words(text: str) -> str:
    """``str(word_to_number(text))``, or ``text`` unchanged when it spells no number."""
    try:
        return str(word_to_number(text))
    except NotANumber:
        return text
