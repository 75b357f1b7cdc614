"""Fixture writers: a handful of records of each document-VQA / GUI-grounding benchmark in its real
published layout (original JSON + image folders, or the Hub parquet mirror).

Each writer takes a folder and a ``layout`` and returns the ``--data`` path; ``DOC_FIXTURES`` maps the
registered dataset name to its writer. Images are small pieces cut from the real corpus
(``tests/corpus.py``), or flat synthetic images when the corpus is absent; their sizes are fixed, so
pixel boxes below are exact.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

try:
    import corpus
except ImportError:  # tests/ imported as a package
    from tests import corpus

CORPUS_CATEGORY = {"doc": "doc", "mobile": "mobile", "desktop": "desktop", "web": "web"}


def image_bytes(category: str, size: tuple[int, int]) -> bytes:
    """PNG bytes of a ``size`` (W, H) piece of the first corpus image of ``category`` (synthetic when
    the corpus is absent)."""
    if corpus.MANIFEST.is_file():
        with Image.open(corpus.first_of(CORPUS_CATEGORY[category])[0]) as src:
            img = src.convert("RGB").crop((0, 0, size[0], size[1]))
    else:
        img = Image.new("RGB", size, (200, 210, 220))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _dump(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _cell(data: bytes, name: str) -> dict:
    return {"bytes": data, "path": name}


def _check(layout: str, allowed: tuple[str, ...]) -> None:
    assert layout in allowed, f"layout {layout!r} not in {allowed}"


# ---------------------------------------------------------------------------------------------- DocVQA / InfoVQA
DOCVQA_RECORDS = [
    {"questionId": 901, "question": "What is the invoice total?", "question_types": ["form"],
     "image": "documents/abcd0001_2.png", "docId": 77, "ucsf_document_id": "abcd0001",
     "ucsf_document_page_no": "2", "answers": ["$1,250.00", "1,250.00"], "data_split": "val"},
    {"questionId": 902, "question": "When was the memo sent?", "question_types": ["others"],
     "image": "documents/abcd0002_1.png", "docId": 78, "ucsf_document_id": "abcd0002",
     "ucsf_document_page_no": "1", "answers": ["march  3"], "data_split": "val"},
    {"questionId": 903, "question": "Who signed the letter?", "question_types": ["handwritten"],
     "image": "documents/abcd0002_1.png", "docId": 78, "ucsf_document_id": "abcd0002",
     "ucsf_document_page_no": "1", "answers": ["Smith"], "data_split": "val"},
]
DOC_SIZE = (160, 120)


def write_docvqa(folder: Path, layout: str = "json") -> Path:
    """``val_v1.0.json`` + ``documents/`` (json), or ``DocVQA/validation-*.parquet`` (parquet)."""
    _check(layout, ("json", "parquet"))
    folder = Path(folder)
    img = image_bytes("doc", DOC_SIZE)
    if layout == "json":
        for rec in DOCVQA_RECORDS:
            _put(folder / rec["image"], img)
        _dump(folder / "val_v1.0.json", {"dataset_name": "docvqa", "dataset_version": "1.0",
                                         "dataset_split": "val", "data": DOCVQA_RECORDS})
        return folder
    rows = [{**r, "questionId": str(r["questionId"]), "image": _cell(img, r["image"])} for r in DOCVQA_RECORDS]
    _parquet(folder / "DocVQA" / "validation-00000-of-00001.parquet", rows)
    return folder


INFOVQA_RECORDS = [
    {"questionId": 65001, "question": "Which country ranks first?", "image_local_name": "10234.jpeg",
     "answers": ["Norway"], "answer_type": ["single span"], "operation/reasoning": [""], "data_split": "val"},
    {"questionId": 65002, "question": "What percentage own a car?", "image_local_name": "10235.jpeg",
     "answers": ["45%", "45 %"], "answer_type": ["single span"], "operation/reasoning": [""], "data_split": "val"},
]


def _jpeg(category: str, size) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(category, size))).save(buf, format="JPEG")
    return buf.getvalue()


def write_infovqa(folder: Path, layout: str = "json") -> Path:
    """``infographicsVQA_val_v1.0_withQT.json`` + ``images/`` (json), or
    ``InfographicVQA/validation-*.parquet`` (parquet)."""
    _check(layout, ("json", "parquet"))
    folder = Path(folder)
    img = _jpeg("doc", DOC_SIZE)
    if layout == "json":
        for rec in INFOVQA_RECORDS:
            _put(folder / "images" / rec["image_local_name"], img)
        _dump(folder / "infographicsVQA_val_v1.0_withQT.json", {"dataset_name": "infographicsVQA",
                                                                 "dataset_split": "val", "data": INFOVQA_RECORDS})
        return folder
    rows = [{**{k: v for k, v in r.items() if k != "image_local_name"}, "questionId": str(r["questionId"]),
             "image": _cell(img, r["image_local_name"]), "image_url": "https://example.invalid/" + r["image_local_name"]}
            for r in INFOVQA_RECORDS]
    _parquet(folder / "InfographicVQA" / "validation-00000-of-00001.parquet", rows)
    return folder


# ---------------------------------------------------------------------------------------------- ChartQA
CHARTQA_RECORDS = {
    "human": [
        {"imgname": "41699051005347.png", "query": "What is the value of 2019?", "label": "23.5"},
        {"imgname": "multi_col_100.png", "query": "Which year is highest?", "label": "2016"},
    ],
    "augmented": [
        {"imgname": "two_col_1.png", "query": "What is the share of Apple?", "label": "45%"},
    ],
}


def write_chartqa(folder: Path, layout: str = "json") -> Path:
    """``test/test_{human,augmented}.json`` + ``test/png/`` (json), ``test_{human,augmented}.jsonl``
    whose image paths are those of the porting repository (jsonl), or ``data/test-*.parquet``."""
    _check(layout, ("json", "jsonl", "parquet"))
    folder = Path(folder)
    img = image_bytes("doc", DOC_SIZE)
    if layout == "json":
        for split, recs in CHARTQA_RECORDS.items():
            for rec in recs:
                _put(folder / "test" / "png" / rec["imgname"], img)
            _dump(folder / "test" / f"test_{split}.json", recs)
        return folder
    if layout == "jsonl":
        for split, recs in CHARTQA_RECORDS.items():
            lines = []
            for rec in recs:
                _put(folder / "png" / rec["imgname"], img)
                lines.append(json.dumps({"image": f"data/chartqa/test/png/{rec['imgname']}",
                                         "question": rec["query"], "answer": rec["label"]}))
            (folder / f"test_{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder
    rows = [{"type": f"{split}_test", "question": r["query"], "answer": r["label"], "image": _cell(img, r["imgname"])}
            for split, recs in CHARTQA_RECORDS.items() for r in recs]
    _parquet(folder / "data" / "test-00000-of-00001.parquet", rows)
    return folder


# ---------------------------------------------------------------------------------------------- OCRBench
OCRBENCH_RECORDS = [
    {"dataset_name": "svt", "id": 12, "image_path": "svt/image/img_0013.jpg",
     "question": "what is written in the image?", "answers": "harbor", "type": "Regular Text Recognition"},
    {"dataset_name": "HME100k", "id": 900, "image_path": "HME100k/train_1.jpg",
     "question": "Please write out the expression of the formula in the image using LaTeX format.",
     "answers": ["x ^ { 2 } + y"], "type": "Handwritten Mathematical Expression Recognition"},
    {"dataset_name": "docVQA", "id": 500, "image_path": "docVQA/val_1.png",
     "question": "What is the date?", "answers": ["March 3", "3 March"], "type": "Doc-oriented VQA"},
]


def write_ocrbench(folder: Path, layout: str = "json") -> Path:
    """The MultimodalOCR layout after the move: ``OCRBench/OCRBench.json`` + ``OCRBench_Images/`` in the
    folder (json), or ``data/test-*.parquet`` (parquet)."""
    _check(layout, ("json", "parquet"))
    folder = Path(folder)
    img = _jpeg("doc", (96, 48))
    if layout == "json":
        for rec in OCRBENCH_RECORDS:
            _put(folder / "OCRBench_Images" / rec["image_path"], img)
        _dump(folder / "OCRBench" / "OCRBench.json", OCRBENCH_RECORDS)
        return folder
    rows = [{"dataset": r["dataset_name"], "question": r["question"], "question_type": r["type"],
             "answer": r["answers"] if isinstance(r["answers"], list) else [r["answers"]],
             "image": _cell(img, r["image_path"])} for r in OCRBENCH_RECORDS]
    _parquet(folder / "data" / "test-00000-of-00001.parquet", rows)
    return folder


# ---------------------------------------------------------------------------------------------- ScreenSpot
SCREEN_SIZE = {"mobile": (100, 200), "desktop": (200, 100), "web": (200, 100)}
#: split -> records (pixel xywh boxes on SCREEN_SIZE images)
SCREENSPOT_RECORDS = {
    "mobile": [
        {"img_filename": "mobile_0a1b.png", "bbox": [40, 80, 20, 40], "instruction": "open settings",
         "data_type": "icon", "data_source": "android"},
        {"img_filename": "mobile_0a1b.png", "bbox": [0, 0, 50, 20], "instruction": "tap the title",
         "data_type": "text", "data_source": "ios"},
    ],
    "desktop": [
        {"img_filename": "pc_1.png", "bbox": [100, 50, 50, 25], "instruction": "close window",
         "data_type": "icon", "data_source": "windows"},
    ],
    "web": [
        {"img_filename": "web_1.png", "bbox": [20, 10, 60, 20], "instruction": "search box",
         "data_type": "text", "data_source": "shop"},
    ],
}


def _seeclick(folder: Path, name: str, image_dir: str) -> Path:
    folder = Path(folder)
    for split, recs in SCREENSPOT_RECORDS.items():
        for rec in recs:
            _put(folder / image_dir / rec["img_filename"], image_bytes(split, SCREEN_SIZE[split]))
        _dump(folder / name.format(split), recs)
    return folder


def write_screenspot(folder: Path, layout: str = "json") -> Path:
    """SeeClick release ``screenspot_{split}.json`` + ``screenspot_imgs/`` (json), or the
    ``rootsautomation/ScreenSpot`` parquet with normalised xyxy boxes (parquet)."""
    _check(layout, ("json", "parquet"))
    if layout == "json":
        return _seeclick(folder, "screenspot_{}.json", "screenspot_imgs")
    rows = []
    for split, recs in SCREENSPOT_RECORDS.items():
        w, h = SCREEN_SIZE[split]
        for r in recs:
            x, y, bw, bh = r["bbox"]
            rows.append({"file_name": r["img_filename"], "bbox": [x / w, y / h, (x + bw) / w, (y + bh) / h],
                         "instruction": r["instruction"], "data_type": r["data_type"],
                         "data_source": r["data_source"],
                         "image": _cell(image_bytes(split, SCREEN_SIZE[split]), r["img_filename"])})
    return _parquet(Path(folder) / "data" / "test-00000-of-00001.parquet", rows).parent.parent


def write_screenspot_v2(folder: Path, layout: str = "json") -> Path:
    """``screenspot_{split}_v2.json`` + ``screenspotv2_image/``."""
    _check(layout, ("json",))
    return _seeclick(folder, "screenspot_{}_v2.json", "screenspotv2_image")


PRO_SIZE = (320, 180)
SCREENSPOT_PRO_RECORDS = {
    "excel_macos": [
        {"id": "excel_macos_3", "img_filename": "excel_mac/screenshot_2024-11-02_10-00-00.png",
         "bbox": [240, 13, 246, 17], "img_size": list(PRO_SIZE), "instruction": "sort ascending",
         "instruction_cn": "升序排序", "application": "excel", "platform": "macos", "group": "Office",
         "ui_type": "icon"},
        {"id": "excel_macos_4", "img_filename": "excel_mac/screenshot_2024-11-02_10-00-00.png",
         "bbox": [0, 0, 160, 20], "img_size": list(PRO_SIZE), "instruction": "the Home tab",
         "instruction_cn": "开始选项卡", "application": "excel", "platform": "macos", "group": "Office",
         "ui_type": "text"},
    ],
    "vscode_windows": [
        {"id": "vscode_windows_1", "img_filename": "vscode_windows/screenshot_2024-11-05_09-00-00.png",
         "bbox": [10, 10, 30, 30], "img_size": list(PRO_SIZE), "instruction": "open explorer",
         "instruction_cn": "打开资源管理器", "application": "vscode", "platform": "windows", "group": "Dev",
         "ui_type": "icon"},
    ],
}


def write_screenspot_pro(folder: Path, layout: str = "json") -> Path:
    """``annotations/<app>_<os>.json`` + ``images/<app>_<os-short>/...``."""
    _check(layout, ("json",))
    folder = Path(folder)
    for name, recs in SCREENSPOT_PRO_RECORDS.items():
        for rec in recs:
            _put(folder / "images" / rec["img_filename"], image_bytes("desktop", PRO_SIZE))
        _dump(folder / "annotations" / f"{name}.json", recs)
    return folder


DOC_FIXTURES = {
    "docvqa": write_docvqa,
    "infovqa": write_infovqa,
    "chartqa": write_chartqa,
    "ocrbench": write_ocrbench,
    "screenspot": write_screenspot,
    "screenspot-v2": write_screenspot_v2,
    "screenspot-pro": write_screenspot_pro,
}
