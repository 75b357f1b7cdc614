"""Command-line flag values shared by every command and by the layers below the CLI that check
their own flags (bench and eval configuration): ``KEY=VALUE`` and ``NAME.OPTION=VALUE`` values
(``--opt``, ``--dataset-opt``), :class:`FlagError`, and the path argument type.

A value is read as a Python literal (``0.3``, ``True``, ``(1, 2)``, ``'I'``) and otherwise kept as the
text itself (``--opt guipruner.preset=II`` gives the string ``"II"``). The values are not checked here:
:func:`vlprune.create_method` validates method options, naming the option.
"""

from __future__ import annotations

import argparse
import ast


class FlagError(ValueError):
    """A flag value that cannot be used; ``flag`` is the flag (``--opt``), ``detail`` says what is wrong.

    ``str(exc)`` is ``"<flag> <detail>"``; the main command line prints ``argument <flag>: <detail>``.
    """

    def __init__(self, flag: str, detail: str):
        super().__init__(f"{flag} {detail}")
        self.flag = flag
        self.detail = detail


def literal(text: str):
    """A command-line value: a Python literal (``0.3``, ``True``, ``"I"``, ``(1, 2)``) or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_assignment(text: str, flag: str, dotted: bool = False) -> tuple[str, str | None, object]:
    """``KEY=VALUE`` (or ``NAME.OPTION=VALUE`` with ``dotted``) -> (key or name, option, value)."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        form = "NAME.OPTION=VALUE" if dotted else "KEY=VALUE"
        raise FlagError(flag, f"{text!r}: expected {form}")
    if not dotted:
        return key, None, literal(value)
    name, dot, option = key.partition(".")
    if not dot or not name or not option:
        raise FlagError(flag, f"{text!r}: expected NAME.OPTION=VALUE (e.g. fastv.retain=0.3)")
    return name, option, literal(value)


def parse_key_values(items, flag: str) -> dict:
    """Repeated ``KEY=VALUE`` flags -> ``{key: value}`` (a key given twice is an error)."""
    out: dict = {}
    for text in items or ():
        key, _, value = parse_assignment(text, flag)
        if key in out:
            raise FlagError(flag, f"{text!r}: {key} is given twice")
        out[key] = value
    return out


def parse_method_options(items, flag: str = "--opt") -> dict[str, dict]:
    """Repeated ``NAME.OPTION=VALUE`` flags -> ``{method name: {option: value}}`` (an option given twice
    for one method is an error)."""
    out: dict[str, dict] = {}
    for text in items or ():
        name, option, value = parse_assignment(text, flag, dotted=True)
        if option in out.get(name, {}):
            raise FlagError(flag, f"{text!r}: {name}.{option} is given twice")
        out.setdefault(name, {})[option] = value
    return out


def path_arg(text: str) -> str:
    """argparse ``type`` of every file / folder argument: an empty value (an unset shell variable, ``--out ""``)
    is refused instead of meaning the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path (an unset shell variable?); give a file or folder name")
    return text
