"""Image inputs of batch commands: files and folders (walked recursively, links followed, loops and
broken links reported) expanded into image files, each failure kept with its path."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: File name extensions (lower case) picked up when a folder is walked.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass
class ImageFailure:
    """An input that could not be analysed, with the reason."""

    path: str
    error: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error}



@dataclass(frozen=True)
class ImageInput:
    """One file to analyse: ``path`` as the user can find it, ``name`` its path relative to the
    folder argument it was found under (its file name for a file argument)."""

    path: Path
    name: str


def collect_images(paths: Iterable[str | os.PathLike]) -> tuple[list[ImageInput], list[ImageFailure]]:
    """Expand arguments into image files, in argument order; folders are walked recursively in
    sorted order for :data:`IMAGE_EXTENSIONS` (case-insensitive), skipping hidden files and folders.
    Symbolic links to files and folders are followed; a link that leads back into a folder being
    walked (a loop), a broken link (with an image extension or none) and an unreadable folder are
    failures.
    A file named explicitly is taken whatever its extension; the same file reached twice is analysed
    once. Missing paths and folders without images come back as failures."""
    out: list[ImageInput] = []
    failures: list[ImageFailure] = []
    seen: set[str] = set()

    def add(p: Path, name: str) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(ImageInput(p, name))

    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found: list[Path] = []
            _walk(p, frozenset({os.path.realpath(p)}), found, failures)
            if not found:
                failures.append(ImageFailure(str(p), "no image files found in this folder"))
            for f in sorted(found, key=lambda q: q.relative_to(p).parts):
                add(f, f.relative_to(p).as_posix())
        elif p.exists():
            add(p, p.name)
        else:
            failures.append(ImageFailure(str(p), "no such file or folder"))
    return out, failures


def _walk(folder: Path, ancestors: frozenset[str], found: list[Path], failures: list[ImageFailure]) -> None:
    """Image files under ``folder`` (links followed); ``ancestors``: real paths of the folders being
    walked, to recognise a link back into one of them."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        failures.append(ImageFailure(str(folder), f"cannot read folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        image_name = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
        try:
            is_dir = entry.is_dir()  # follows links
        except OSError:
            is_dir = False
        if is_dir:
            real = os.path.realpath(path)
            if real in ancestors:
                failures.append(ImageFailure(str(path), f"symbolic link loop: leads back to {real}, which is "
                                                        "already being walked"))
            else:
                _walk(path, ancestors | {real}, found, failures)
        elif image_name and entry.is_file():
            found.append(path)
        elif entry.is_symlink() and not path.exists() and (image_name or not os.path.splitext(entry.name)[1]):
            # a dangling link that was an image or possibly a folder: say so instead of skipping it
            failures.append(ImageFailure(str(path), f"broken symbolic link to {os.readlink(path)}"))
