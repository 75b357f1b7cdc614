"""Tables in a page transcription, as olmOCR-bench's table tests read them (Markdown pipes and HTML).

Follows VLMEvalKit's olmOCR-bench port (``vlmeval/dataset/olmOCRBench/tests.py``, from allenai/olmocr's
``olmocr/bench/tests.py``): a Markdown table is a run of >= 2 lines holding ``|``, the dash separator line
dropped, outer empty cells trimmed, rows padded; its first row and first column are the headings. An
HTML ``<table>`` (parsed with BeautifulSoup's ``html.parser``) keeps ``rowspan`` text in the rows below,
``colspan`` cells empty, ``<th>`` / ``<thead>`` rows as header rows and ``<th>`` columns as header columns,
and maps each column / row to the header cells above / left of it (spans included).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """rows: equal-length lists of cell text; col_headers / row_headers: index -> [(row or col, text)]."""

    rows: list[list[str]]
    header_rows: set[int] = field(default_factory=set)
    header_cols: set[int] = field(default_factory=set)
    col_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    row_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), (len(self.rows[0]) if self.rows else 0)


def _padded(rows: list[list[str]]) -> list[list[str]]:
    width = max(len(r) for r in rows)
    return [r + [""] * (width - len(r)) for r in rows]


def _markdown_rows(lines: list[str]) -> list[list[str]]:
    sep = next((i for i, ln in enumerate(lines)
                if (c := ln.replace("|", "").strip()) and all(ch in "- :" for ch in c)), None)
    out = []
    for i, ln in enumerate(lines):
        if i == sep or (ln.strip() and all(ch in "- :|" for ch in ln)):
            continue
        cells = [c.strip() for c in ln.split("|")]
        if cells and cells[0] == "":
            cells = cells[1:]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        if cells:
            out.append(cells)
    return out


def _markdown_table(lines: list[str]) -> Table | None:
    rows = _markdown_rows(lines)
    if not rows:
        return None
    rows = _padded(rows)
    width = len(rows[0])
    return Table(rows, {0}, {0} if width else set(), {c: [(0, rows[0][c])] for c in range(width)},
                 {r: [(0, rows[r][0])] for r in range(1, len(rows))} if width else {})


def markdown_tables(text: str) -> list[Table]:
    """Every pipe table of ``text``."""
    tables, current = [], []
    for line in text.strip().split("\n") + [""]:
        if "|" in line:
            current.append(line)
            continue
        if len(current) >= 2 and (t := _markdown_table(current)) is not None:
            tables.append(t)
        current = []
    return tables


def _html_table(table) -> Table | None:
    rows = table.find_all(["tr"])
    data: list[list[str]] = []
    header_rows: set[int] = set()
    header_cols: set[int] = set()
    col_headers: dict[int, list] = {}
    row_headers: dict[int, list] = {}
    thead = table.find("thead")
    if thead:
        header_rows.update(rows.index(tr) for tr in thead.find_all("tr"))
    grid: dict[tuple[int, int], str] = {}
    col_spans: dict[str, set[int]] = {}
    row_spans: dict[str, set[int]] = {}
    for r, tr in enumerate(rows):
        cells, row, c = tr.find_all(["th", "td"]), [], 0
        if tr.find("th"):
            header_rows.add(r)
        for cell in cells:
            while (r, c) in grid:
                row.append(grid[(r, c)])
                c += 1
            for br in cell.find_all("br"):
                br.replace_with("\n")
            text = cell.get_text().strip()
            rowspan, colspan = int(cell.get("rowspan", 1)), int(cell.get("colspan", 1))
            row.append(text)
            for i in range(rowspan):
                for j in range(colspan):
                    if i or j:
                        grid[(r + i, c + j)] = text if (j == 0 and i > 0) else ""
            if cell.name == "th":
                header_cols.update(c + j for j in range(colspan))
                header_rows.update(r + i for i in range(1, rowspan) if r + i < len(rows))
                for j in range(colspan):
                    col_headers.setdefault(c + j, []).append((r, text))
                    if text and colspan > 1:
                        col_spans.setdefault(text, set()).add(c + j)
                if text and rowspan > 1:
                    row_spans.setdefault(text, set()).update(r + i for i in range(rowspan))
            if cell.name == "td" and rowspan > 1 and c in header_cols:
                for i in range(1, rowspan):
                    if r + i < len(rows):
                        row_headers.setdefault(r + i, []).append((c, text))
            c += colspan
        data.append(row)
    for text, cols in col_spans.items():
        for col in cols:
            for r in range(len(data)):
                if r in header_rows:
                    continue
                for j in range(col, len(data[r])):
                    heads = col_headers.setdefault(j, [])
                    if not any(h[1] == text for h in heads):
                        heads.append((min(rr for rr, _ in col_headers.get(col, [(0, "")])), text))
    for text, rs in row_spans.items():
        for r in rs:
            if r < len(data):
                heads = row_headers.setdefault(r, [])
                if not any(h[1] == text for h in heads):
                    heads.append((min(header_cols) if header_cols else 0, text))
    for c in header_cols:
        for r, row in enumerate(data):
            if c < len(row) and row[c].strip():
                heads = row_headers.setdefault(r, [])
                if not any(h[1] == row[c] for h in heads):
                    heads.append((c, row[c]))
    if not data:
        return None
    return Table(_padded(data) if max(len(r) for r in data) else data, header_rows, header_cols, col_headers,
                 row_headers)


def html_tables(text: str) -> list[Table]:
    """Every ``<table>`` of ``text`` (needs BeautifulSoup: ``pip install beautifulsoup4``)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    return [t for t in (_html_table(tb) for tb in soup.find_all("table")) if t is not None]
