"""GUI grounding: ScreenSpot (v1), ScreenSpot-v2 and ScreenSpot-Pro, scored by point-in-box.

Layouts read (``--data`` = the folder, or one annotation file in it = one split / application):

* ``screenspot`` -- SeeClick release: ``screenspot_mobile.json``, ``screenspot_desktop.json``,
  ``screenspot_web.json`` + ``screenspot_imgs/`` beside them; records ``img_filename``, ``bbox``
  (original-pixel **xywh**), ``instruction``, ``data_type`` (text / icon), ``data_source``. Or the Hub
  parquet ``rootsautomation/ScreenSpot`` (``data/test-*.parquet`` or the shard files; ``bbox`` already
  normalised xyxy, checked to lie in [0, 1]; the split follows ``data_source``: ios / android ->
  mobile, macos / windows -> desktop, anything else -> web).
* ``screenspot-v2`` -- ``OS-Copilot/ScreenSpot-v2``: ``screenspot_{mobile,desktop,web}_v2.json`` +
  ``screenspotv2_image/`` (the Hub ships it zipped; ``load("hub")`` unpacks it); records as v1.
* ``screenspot-pro`` -- ``likaixin/ScreenSpot-Pro``: ``annotations/<app>_<os>.json`` + ``images/``;
  records ``id``, ``img_filename`` (relative to ``images/``), ``bbox`` (original-pixel **xyxy**),
  ``img_size`` [W, H], ``instruction``, ``application``, ``platform``, ``group``, ``ui_type``.

Boxes are normalised at load time as the evaluators do: v1 / v2 divide by the image size read from
the file (SeeClick ``pretrain/screenspot_test.py``), Pro by ``img_size`` (``eval_screenspot_pro.py``).
Ids: Pro ``id``; v1 / v2 ``<file stem>:<0-based index>``.

Prompts (one per family, each in its own output convention; ``max_new_tokens`` 128 as lmms-eval's
``screenspot_pro`` task):

* Qwen2-VL: the OS-Atlas / SeeClick grounding question ``In this UI screenshot, what is the position
  of the element corresponding to the command "<instruction>" (with bbox)?``; the answer is
  ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on the 0-1000 grid, scored at the box centre.
* Qwen2.5-VL: ScreenSpot-Pro's ``models/qwen2_5vl.py`` set-up -- a ``computer_use`` tool (``mobile_use``
  for the mobile split) announced in the system message with the canvas the model saw
  ("The screen's resolution is W_rxH_r"), the instruction as the user text; the answer is a tool
  call whose ``coordinate`` is in canvas pixels. ScreenSpot-Pro also pre-fills the assistant turn with
  the start of a ``left_click`` call; the message interface has no assistant pre-fill, so the model
  writes the whole call.
* Qwen3-VL / Qwen3.5: the same tools with "The screen's resolution is 1000x1000" and coordinates on
  the 0-1000 grid (Qwen3-VL computer-use cookbook; the PixelPrune authors' evaluator).

Metrics (fractions; unparseable answers count as wrong): ``overall_accuracy``, ``text_accuracy``,
``icon_accuracy`` (pooled, ``micro``), ``format_error_rate``; v1 / v2 add per split
``<split>_accuracy`` / ``<split>_text_accuracy`` / ``<split>_icon_accuracy`` and
``overall_accuracy_cell_mean`` (ShowUI's unweighted mean of the six split x type cells); Pro adds the
same three per group (``dev_accuracy`` ...) and ``app_<application>_accuracy``, all pooled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, ClassVar

from vlprune.eval.base import DatasetError, LoadResult, Parsed, PromptContext, Sample, register_dataset
from vlprune.eval.coords import ParseError, find_point
from vlprune.eval.datasets._common import (
    Collector,
    FileDataset,
    RecordError,
    choose,
    counts,
    glob_one_level,
    image_cell,
    image_file,
    json_records,
    need,
    numbers,
    parquet_records,
    user_turn,
    value,
)
from vlprune.eval.metrics.aggregate import cell_mean, group, micro
from vlprune.eval.metrics.grounding import normalise_box, point_in_box, xywh_to_xyxy
from vlprune.eval.tools import tool_system_text, tool_schema
from vlprune.families import get_family

SPLITS = ("mobile", "desktop", "web")
UI_TYPES = ("text", "icon")
PRO_GROUPS = ("Dev", "Creative", "CAD", "Scientific", "Office", "OS")
#: rootsautomation/ScreenSpot ``data_source`` -> split (every other source is a web site)
SOURCE_SPLIT = {"ios": "mobile", "android": "mobile", "macos": "desktop", "windows": "desktop"}
KNORM_SCREEN = (1000, 1000)

QWEN2_VL_PROMPT = 'In this UI screenshot, what is the position of the element corresponding to the command "{}" (with bbox)?'


# ---------------------------------------------------------------------------------------------- prompts
def _box_question(sample: Sample, ctx: PromptContext) -> list[dict]:
    return user_turn(1, QWEN2_VL_PROMPT.format(sample.question))


def _tool_call(screen: Callable[[PromptContext], tuple[int, int]]):
    def build(sample: Sample, ctx: PromptContext) -> list[dict]:
        tool = "mobile_use" if sample.meta.get("split") == "mobile" else "computer_use"
        system = tool_system_text([tool_schema(tool, screen(ctx))])
        return [{"role": "system", "content": [{"type": "text", "text": system}]}] + user_turn(1, sample.question)

    return build


#: family -> grounding prompt in its own output convention (see the module docstring)
PROMPTS: dict[str, Callable[[Sample, PromptContext], list[dict]]] = {
    "qwen2-vl": _box_question,
    "qwen2.5-vl": _tool_call(lambda ctx: tuple(int(v) for v in ctx.current_canvas)),
    "qwen3-vl": _tool_call(lambda ctx: KNORM_SCREEN),
    "qwen3.5": _tool_call(lambda ctx: KNORM_SCREEN),
}


def _record_box(fn, *args) -> list[float]:
    try:
        return list(fn(*args))
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def _ui_type(rec: dict, key: str) -> str:
    ui = need(rec, key, str)
    if ui not in UI_TYPES:
        raise RecordError(f"field {key!r} must be 'text' or 'icon', got {ui!r}")
    return ui


def _accuracies(records: list[dict], prefix: str = "", total: str = "accuracy") -> dict:
    """``<prefix><total>`` / ``<prefix>text_accuracy`` / ``<prefix>icon_accuracy`` of ``records``, pooled."""
    by_type = group(((r.get("meta") or {}).get("ui_type"), value(r, "correct")) for r in records)
    out = {f"{prefix}{total}": micro(value(r, "correct") for r in records)}
    out.update({f"{prefix}{t}_accuracy": micro(by_type.get(t, ())) for t in UI_TYPES})
    return out


class _Grounding(FileDataset):
    kind = "grounding"
    max_new_tokens = 128
    #: meta key of the reported groups and their names
    group_key: ClassVar[str] = "split"
    groups: ClassVar[tuple[str, ...]] = SPLITS
    variants: ClassVar[dict] = {"overall_accuracy": "micro", "point_in_box": "inclusive edges; box answer -> centre"}

    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        return PROMPTS[get_family(ctx.family).name](sample, ctx)

    def parse(self, text: str, sample: Sample, ctx: PromptContext) -> Parsed:
        try:
            return Parsed(answer=list(find_point(text, ctx.family, ctx.current_canvas)))
        except ParseError as exc:
            return Parsed(format_error=str(exc))

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"correct": 0.0}
        return {"correct": float(point_in_box(parsed.answer, sample.target["bbox"]))}

    def summarize(self, records: list[dict]) -> dict:
        c = counts(records)
        out = _accuracies(records, total="overall_accuracy")
        by_group = group(((r.get("meta") or {}).get(self.group_key), r) for r in records)
        for g in self.groups:
            out.update(_accuracies(by_group.get(g, []), f"{g.lower()}_"))
        out.update(self.extra_metrics(records))
        out["format_error_rate"] = c["format_errors"] / c["n"] if c["n"] else None
        return {**out, **c, "variants": self.variants}

    def extra_metrics(self, records: list[dict]) -> dict:
        return {}


# ---------------------------------------------------------------------------------------------- v1 / v2
class _SeeClickFormat(_Grounding):
    """ScreenSpot v1 / v2: three split files of xywh pixel boxes and one image folder."""

    file_pattern: ClassVar[str]  # "screenspot_{}.json" with the split name
    image_dir: ClassVar[str]
    variants = {**_Grounding.variants, "overall_accuracy_cell_mean": "cell_mean"}

    def _split_of(self, file: Path) -> str | None:
        return next((s for s in SPLITS if file.name == self.file_pattern.format(s)), None)

    #: parquet shard patterns of the Hub mirror (v1 only)
    shards: ClassVar[tuple[str, ...]] = ()

    def _files(self, path: Path) -> list[Path]:
        def ok(f: Path) -> bool:
            return (f.suffix == ".parquet" and bool(self.shards)) or self._split_of(f) is not None

        splits = [path / self.file_pattern.format(s) for s in SPLITS]
        present = [f for f in splits if f.is_file()] if path.is_dir() else []
        if present and len(present) < len(splits) and not glob_one_level(path, self.shards):
            missing = ", ".join(f.name for f in splits if not f.is_file())
            raise DatasetError(f"{self.name}: {path} holds {', '.join(f.name for f in present)} but not {missing}; "
                               f"a folder must hold all {len(splits)} split files (or give one split file as --data)")
        return self.find_files(path, ok, [splits], self.shards)

    def read(self, path: Path) -> LoadResult:
        col = Collector(self.name)
        for file in self._files(path):
            if file.suffix == ".parquet":
                self._read_parquet(file, col)
                continue
            folder = file.parent / self.image_dir
            if not folder.is_dir():
                raise DatasetError(f"{self.name}: image folder {folder} not found; expected {self.layout}")
            split = self._split_of(file)
            for i, rec in enumerate(json_records(file)):
                with col.record(file, i) as slot:
                    slot.id = f"{file.stem}:{i}"
                    image = image_file(folder, need(rec, "img_filename", str), f"{file} [record {i}]")
                    try:
                        size = image.size()
                    except OSError as exc:
                        raise RecordError(f"cannot read the size of {image.path}: {exc}") from None
                    box = _record_box(normalise_box, _record_box(xywh_to_xyxy, numbers(rec, "bbox", 4)), size)
                    meta = {"split": split, "ui_type": _ui_type(rec, "data_type"), "data_source": rec.get("data_source")}
                    col.add(Sample(slot.id, [image], need(rec, "instruction", str), {"bbox": box}, meta), file, i)
        return col.result(path)

    def _read_parquet(self, file: Path, col: Collector) -> None:
        raise NotImplementedError  # only layouts with ``shards`` hold parquet files

    def extra_metrics(self, records: list[dict]) -> dict:
        cells = group((((r.get("meta") or {}).get("split"), (r.get("meta") or {}).get("ui_type")), value(r, "correct"))
                      for r in records)
        cells = {k: v for k, v in cells.items() if k[0] in SPLITS and k[1] in UI_TYPES}
        return {"overall_accuracy_cell_mean": cell_mean(cells)}


@register_dataset("screenspot")
class ScreenSpot(_SeeClickFormat):
    hub_id = "rootsautomation/ScreenSpot"
    file_pattern = "screenspot_{}.json"
    image_dir = "screenspot_imgs"
    shards = ("data/test-*.parquet", "test-*.parquet")
    layout = ("screenspot_{mobile,desktop,web}.json + screenspot_imgs/, "
              "or rootsautomation/ScreenSpot parquet (data/test-*.parquet)")

    def _read_parquet(self, file: Path, col: Collector) -> None:
        for i, rec in enumerate(parquet_records(file)):
            with col.record(file, i) as slot:
                slot.id = f"{file.stem}:{i}"
                box = numbers(rec, "bbox", 4)
                if not (all(0.0 <= v <= 1.0 for v in box) and box[0] <= box[2] and box[1] <= box[3]):
                    raise RecordError(f"field 'bbox' is not a normalised xyxy box: {box}")
                source = need(rec, "data_source", str)
                meta = {"split": SOURCE_SPLIT.get(source, "web"), "ui_type": _ui_type(rec, "data_type"),
                        "data_source": source}
                image = image_cell(rec.get("image"), "image", f"{file} [record {i}]")
                col.add(Sample(slot.id, [image], need(rec, "instruction", str), {"bbox": box}, meta), file, i)


@register_dataset("screenspot-v2")
class ScreenSpotV2(_SeeClickFormat):
    hub_id = "OS-Copilot/ScreenSpot-v2"
    file_pattern = "screenspot_{}_v2.json"
    image_dir = "screenspotv2_image"
    layout = "screenspot_{mobile,desktop,web}_v2.json + screenspotv2_image/"

    def prepare_hub(self, root: Path) -> Path:
        archive = root / f"{self.image_dir}.zip"
        if not (root / self.image_dir).is_dir() and archive.is_file():
            with zipfile.ZipFile(archive) as z:
                z.extractall(root)
        return root


# ---------------------------------------------------------------------------------------------- Pro
@register_dataset("screenspot-pro")
class ScreenSpotPro(_Grounding):
    hub_id = "likaixin/ScreenSpot-Pro"
    layout = "annotations/<app>_<os>.json + images/ (or one annotations/*.json file)"
    group_key = "group"
    groups = PRO_GROUPS

    def __init__(self, only_groups: str | tuple[str, ...] | list[str] | None = None):
        """``only_groups``: load the items of these groups only (e.g. ``"Scientific"``, the subset of
        PixelPrune's efficiency table); None = all."""
        chosen = (only_groups,) if isinstance(only_groups, str) else tuple(only_groups or ())
        for g in chosen:
            choose(g, PRO_GROUPS, "ScreenSpot-Pro group")
        self.only_groups = chosen

    def _files(self, path: Path) -> tuple[list[Path], Path]:
        if path.is_file() and path.suffix == ".json":
            return [path], path.parent.parent / "images"
        files = sorted((path / "annotations").glob("*.json")) if path.is_dir() else []
        if not files:
            raise self.no_layout(path)
        return files, path / "images"

    def read(self, path: Path) -> LoadResult:
        files, folder = self._files(path)
        if not folder.is_dir():
            raise DatasetError(f"{self.name}: image folder {folder} not found; expected {self.layout}")
        col = Collector(self.name)
        for file in files:
            for i, rec in enumerate(json_records(file)):
                with col.record(file, i) as slot:
                    slot.id = str(need(rec, "id", (str, int)))
                    image = image_file(folder, need(rec, "img_filename", str), f"{file} [record {i}]")
                    box = _record_box(normalise_box, numbers(rec, "bbox", 4), numbers(rec, "img_size", 2))
                    grp = need(rec, "group", str)
                    if grp not in PRO_GROUPS:
                        raise RecordError(f"field 'group' must be one of {', '.join(PRO_GROUPS)}, got {grp!r}")
                    if self.only_groups and grp not in self.only_groups:
                        continue
                    meta = {"group": grp, "ui_type": _ui_type(rec, "ui_type"),
                            "application": need(rec, "application", str), "platform": rec.get("platform")}
                    col.add(Sample(slot.id, [image], need(rec, "instruction", str), {"bbox": box}, meta), file, i)
        return col.result(path)

    def summarize(self, records: list[dict]) -> dict:
        out = super().summarize(records)
        if self.only_groups:
            out["variants"] = {**out["variants"], "only_groups": list(self.only_groups)}
        return out

    def extra_metrics(self, records: list[dict]) -> dict:
        by_app = group(((r.get("meta") or {}).get("application"), value(r, "correct")) for r in records)
        return {f"app_{app}_accuracy": micro(v) for app, v in sorted(by_app.items(), key=lambda kv: str(kv[0]))
                if app is not None}
