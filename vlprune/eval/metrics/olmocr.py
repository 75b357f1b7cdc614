"""olmOCR-bench unit tests on a page transcription (Poznanski et al., 2025, olmOCR), as VLMEvalKit's port
runs them (``vlmeval/dataset/olmOCRBench/tests.py`` and ``evaluator.py``, from allenai/olmocr
``olmocr/bench``).

Every test is a JSON object ``{"pdf", "page", "id", "type", "max_diffs", ...}``; the transcription passes
or fails it. Text is normalised first (:func:`normalize_text`: ``<br>`` to spaces, whitespace collapsed,
bold / italic markers and ``<b>``/``<i>`` removed, NFC, curly quotes, dashes and the micro sign folded).

* ``present`` / ``absent`` (``text``, ``case_sensitive``, ``first_n``, ``last_n``): RapidFuzz
  ``partial_ratio`` of the text in the transcription against ``1 - max_diffs / len(text)``;
* ``order`` (``before``, ``after``): both found with at most ``max_diffs`` edits (fuzzysearch
  ``find_near_matches``) and some match of ``before`` starts before some match of ``after``;
* ``table`` (``cell`` and optional ``up``, ``down``, ``left``, ``right``, ``top_heading``,
  ``left_heading``): a cell of some Markdown or HTML table (:mod:`.olmocr_tables`) matches ``cell``
  (RapidFuzz ``ratio`` >= max(0.5, 1 - max_diffs / len)) and every given neighbour / heading matches too;
* ``math`` (``math``): the published test passes when an equation of the transcription (``$$..$$``,
  ``\\(..\\)``, ``\\[..\\]``, ``$..$``) equals the reference, else it compares KaTeX renderings in a
  browser. vlprune has no browser: only the exact-equation check runs (variant ``exact``), so math scores
  are a lower bound of the published ones;
* ``baseline`` (``max_length``, ``max_repeats`` = 30, ``check_disallowed_characters``): not blank (or at
  most ``max_length`` alphanumerics for a blank page), no n-gram (n <= 5) repeated more than
  ``max_repeats`` times at the end, no CJK / kana / emoji characters. The evaluator adds one to every PDF
  that has none (page 1, category ``baseline``).

Score (``summarize``): per category (the test file) the share of its tests passed; the overall score is
the unweighted mean over the categories, ``baseline`` included.

RapidFuzz, fuzzysearch and BeautifulSoup are optional dependencies: ``pip install "vlprune[eval-docs]"``.
"""

from __future__ import annotations

import re
import unicodedata

from vlprune.eval.metrics.olmocr_tables import Table, html_tables, markdown_tables

TEST_TYPES = ("baseline", "present", "absent", "order", "table", "math")
_COMMON = {"pdf", "page", "id", "type", "max_diffs", "checked", "url"}
_FIELDS = {
    "present": {"text", "case_sensitive", "first_n", "last_n"},
    "absent": {"text", "case_sensitive", "first_n", "last_n"},
    "order": {"before", "after"},
    "table": {"cell", "up", "down", "left", "right", "top_heading", "left_heading"},
    "math": {"math"},
    "baseline": {"max_length", "max_repeats", "check_disallowed_characters"},
}
_REPLACE = {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "＿": "_", "–": "-", "—": "-",
            "‑": "-", "‒": "-", "−": "-", "\u00b5": "\u03bc"}
_DISALLOWED = re.compile("[\u4e00-\u9fff\u3040-\u309f\u30a0-\u30ff\U0001F600-\U0001F64F\U0001F300-\U0001F5FF"
                         "\U0001F680-\U0001F6FF\U0001F1E0-\U0001F1FF]")
_EQUATIONS = (r"\$\$(.+?)\$\$", r"\\\((.+?)\\\)", r"\\\[(.+?)\\\]", r"\$(.+?)\$")


def _libs():
    try:
        from fuzzysearch import find_near_matches
        from rapidfuzz import fuzz
    except ImportError as exc:
        raise ImportError(f"olmOCR-bench scoring needs rapidfuzz, fuzzysearch and beautifulsoup4 ({exc}); "
                          f"install them with: pip install \"vlprune[eval-docs]\"") from None
    return fuzz, find_near_matches


def normalize_text(text: str) -> str:
    text = re.sub(r"<br/?>", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\*\*(.*?)\*\*", r"\1", text)
    text = re.sub(r"__(.*?)__", r"\1", text)
    text = re.sub(r"</?b>", "", text)
    text = re.sub(r"</?i>", "", text)
    text = re.sub(r"\*(.*?)\*", r"\1", text)
    text = re.sub(r"_(.*?)_", r"\1", text)
    text = unicodedata.normalize("NFC", text)
    for fancy, plain in _REPLACE.items():
        text = text.replace(fancy, plain)
    return text


def check_test(test: dict) -> dict:
    """A test object validated as the published loader does (ValueError naming the problem), with its text
    fields normalised."""
    if not isinstance(test, dict):
        raise ValueError(f"a test must be a JSON object, got {type(test).__name__}")
    kind = test.get("type")
    if kind not in TEST_TYPES:
        raise ValueError(f"unknown test type {kind!r}; expected one of: {', '.join(TEST_TYPES)}")
    unknown = set(test) - _COMMON - _FIELDS[kind]
    if unknown:
        raise ValueError(f"{kind} test has unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("pdf", "id"):
        if not isinstance(test.get(key), str) or not test[key]:
            raise ValueError(f"test field {key!r} must be a non-empty string")
    if not isinstance(test.get("page"), int) or isinstance(test.get("page"), bool):
        raise ValueError(f"test {test['id']}: field 'page' must be an integer")
    diffs = test.get("max_diffs", 0)
    if not isinstance(diffs, int) or isinstance(diffs, bool) or diffs < 0:
        raise ValueError(f"test {test['id']}: max_diffs must be an integer >= 0, got {diffs!r}")
    out = dict(test, max_diffs=diffs)
    text_keys = {"present": ("text",), "absent": ("text",), "order": ("before", "after"),
                 "table": ("cell", "up", "down", "left", "right", "top_heading", "left_heading")}.get(kind, ())
    for key in text_keys:
        value = test.get(key, "" if kind == "table" and key != "cell" else None)
        if not isinstance(value, str):
            raise ValueError(f"test {test['id']}: field {key!r} must be a string")
        out[key] = normalize_text(value)
        if kind != "table" and not out[key].strip():
            raise ValueError(f"test {test['id']}: field {key!r} cannot be empty")
    if kind == "order" and (diffs > len(out["before"]) // 2 or diffs > len(out["after"]) // 2):
        raise ValueError(f"test {test['id']}: max_diffs is more than half of a search string")
    if kind == "math" and not (isinstance(test.get("math"), str) and test["math"].strip()):
        raise ValueError(f"test {test['id']}: math test needs a non-empty 'math' expression")
    return out


def _threshold(diffs: int, text: str) -> float:
    return 1.0 - diffs / (len(text) if text else 1)


def _presence(t: dict, md: str) -> bool:
    fuzz, _ = _libs()
    query, md = t["text"], normalize_text(md)
    if not t.get("case_sensitive", True):
        query, md = query.lower(), md.lower()
    first, last = t.get("first_n"), t.get("last_n")
    if first and last:
        md = md[:first] + md[-last:]
    elif first:
        md = md[:first]
    elif last:
        md = md[-last:]
    found = fuzz.partial_ratio(query, md) / 100.0 >= _threshold(t["max_diffs"], query)
    return found if t["type"] == "present" else not found


def _order(t: dict, md: str) -> bool:
    _, near = _libs()
    md = normalize_text(md)
    before = near(t["before"], md, max_l_dist=t["max_diffs"])
    after = near(t["after"], md, max_l_dist=t["max_diffs"])
    return any(b.start < a.start for b in before for a in after)


def _heading(fuzz, want: str, diffs: int, listed: list, fallback: list[str], last_resort: list[str]) -> bool:
    """olmOCR's heading check: headers of the cell's column/row, then header rows/cols, then any cell."""
    need = max(0.5, _threshold(diffs, want))
    best, best_sim = "", 0.0
    for texts in (listed, fallback):
        for text in texts:
            h = normalize_text(text)
            sim = fuzz.ratio(want, h) / 100.0
            if sim > best_sim:
                best, best_sim = h, sim
                if best_sim >= need:
                    return True
    if not best:
        for text in last_resort:
            h = normalize_text(text)
            sim = fuzz.ratio(want, h) / 100.0
            if sim > best_sim:
                best, best_sim = h, sim
    return bool(best) and best_sim >= need


def _cell_ok(fuzz, t: dict, tab: Table, i: int, j: int) -> bool:
    rows, (n, m), d = tab.rows, tab.shape, t["max_diffs"]
    neighbours = (("up", i > 0, (i - 1, j)), ("down", i < n - 1, (i + 1, j)), ("left", j > 0, (i, j - 1)),
                  ("right", j < m - 1, (i, j + 1)))
    for key, exists, (a, b) in neighbours:
        want = t.get(key, "")
        if want and exists and fuzz.ratio(want, normalize_text(rows[a][b])) / 100.0 < max(0.5, _threshold(d, want)):
            return False
    top = t.get("top_heading", "")
    if top and not _heading(fuzz, top, d, [h for _, h in tab.col_headers.get(j, [])],
                            [rows[r][j] for r in sorted(tab.header_rows) if r < i and rows[r][j].strip()],
                            [rows[r][j] for r in range(i) if rows[r][j].strip()]):
        return False
    left = t.get("left_heading", "")
    if left and not _heading(fuzz, left, d, [h for _, h in tab.row_headers.get(i, [])],
                             [rows[i][c] for c in sorted(tab.header_cols) if c < j and rows[i][c].strip()],
                             [rows[i][c] for c in range(j) if rows[i][c].strip()]):
        return False
    return True


def _table(t: dict, md: str) -> bool:
    fuzz, _ = _libs()
    need = max(0.5, _threshold(t["max_diffs"], t["cell"]))
    for tab in markdown_tables(md) + html_tables(md):
        n, m = tab.shape
        for i in range(n):
            for j in range(m):
                if fuzz.ratio(t["cell"], normalize_text(tab.rows[i][j])) / 100.0 >= need and _cell_ok(fuzz, t, tab, i, j):
                    return True
    return False


def equations(md: str) -> list[str]:
    """The equations of a transcription, by delimiter in the published order (each delimiter's matches
    removed before the next is searched)."""
    found = []
    for pattern in _EQUATIONS:
        found += [e.strip() for e in re.findall(pattern, md, re.DOTALL)]
        md = re.sub(pattern, "", md, flags=re.DOTALL)
    return found


def _math(t: dict, md: str) -> bool:
    return any(e == t["math"] for e in equations(md))


def ngram_repeats(text: str, max_n: int = 5) -> list[int]:
    """For n = 1 .. max_n: how many times the text's last n characters repeat back to back at its end
    (whitespace collapsed first); olmOCR's ``RepeatDetector``."""
    text = re.sub(r"\s+", " ", text)
    out = [0] * max_n
    for n in range(1, max_n + 1):
        if len(text) < n:
            continue
        target, pos, count = text[-n:], len(text) - n, 0
        while pos >= 0 and text[pos:pos + n] == target:
            count, pos = count + 1, pos - n
        out[n - 1] = count
    return out


def _baseline(t: dict, md: str) -> bool:
    length = len("".join(c for c in md if c.isalnum()).strip())
    if t.get("max_length") is not None:
        return length <= t["max_length"]
    if length == 0:
        return False
    if any(c > t.get("max_repeats", 30) for c in ngram_repeats(md)):
        return False
    return not (t.get("check_disallowed_characters", True) and _DISALLOWED.search(md))


_RUN = {"present": _presence, "absent": _presence, "order": _order, "table": _table, "math": _math,
        "baseline": _baseline}


def run_test(test: dict, md: str) -> bool:
    """Whether transcription ``md`` passes ``test`` (a :func:`check_test` result); an error inside a test
    fails it, as the published evaluator counts it."""
    try:
        return bool(_RUN[test["type"]](test, md))
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 -- the evaluator records any exception as a failed test
        return False
