"""Multiple-choice answer matching (AI2D), as VLMEvalKit's ``exact_matching`` policy reads a prediction.

VLMEvalKit (``vlmeval/utils/matching_util.py``, ``can_infer``, 2025-08 .. 2026-06) first looks for an
option letter, then for an option's text; when neither gives exactly one option the published evaluator
asks an LLM judge, or -- with no judge (``exact_matching``) -- counts the item wrong. vlprune has no judge:
an answer this rule cannot infer scores 0 (and is counted in ``n_uninferred``).

* letter rule: the punctuation ``.()[],:;!*#{}`` becomes spaces, the text is split on whitespace; if
  exactly one option letter occurs as a word, it is the answer when it is among the last 5 words
  (``"Z"``, refusal, when no letter and a ``Z`` word occurs); a few fixed refusals give ``"Z"``;
* text rule: lowercased, the answer is the one option whose text occurs in it -- unless the answer is
  longer than twice the options' total length.
"""

from __future__ import annotations

from typing import Mapping

_PUNCT = ".()[],:;!*#{}"
_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")


def _letter(answer: str, choices: Mapping[str, str]) -> str | None:
    for refusal in _REFUSALS:
        if refusal in answer:
            return "Z"
    text = answer
    for c in _PUNCT:
        text = text.replace(c, " ")
    words = [w.strip() for w in text.split()]
    hits = [c for c in choices if c in words]
    if len(hits) == 1:
        ch = hits[0]
        return ch if words.index(ch) > len(words) - 5 else None
    if not hits and sum(1 for c in ("Z", "") if c in words) == 1:
        return "Z"
    return None


def _text(answer: str, choices: Mapping[str, str]) -> str | None:
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    hits = [k for k, v in choices.items() if str(v).lower() in answer]
    return hits[0] if len(hits) == 1 else None


def infer_choice(answer: str, choices: Mapping[str, str]) -> str | None:
    """The option letter ``answer`` names (``choices``: letter -> option text), ``"Z"`` for a refusal, or
    None when the rule cannot tell."""
    answer = str(answer)
    return _letter(answer, choices) or _text(answer, choices)
