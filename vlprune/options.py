"""Validation of method options, shared by every method so the API, ``analyze``, ``bench`` and
``eval`` apply the same rules (each method's ``__post_init__`` calls these; the CLI passes values
through :func:`vlprune.create_method` and reports the error with the flag that gave it).

Every check names the option and says what is allowed; booleans are refused where a number is meant
(``tau=True`` is a mistake, not 1.0). Errors are :class:`OptionError` (a ``ValueError``) carrying the
option's name, so a command line can report the flag (``option`` ``max_pixels`` -> ``--max-pixels``).
"""

from __future__ import annotations

import math
import numbers


class OptionError(ValueError):
    """An option value that is not allowed; ``option`` is its name."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option

    @property
    def flag(self) -> str:
        """The command-line flag of the option (``max_pixels`` -> ``--max-pixels``)."""
        return "--" + self.option.replace("_", "-")


def _number(name: str, value, kind=numbers.Real) -> float:
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if kind is numbers.Integral else "a number"
        raise OptionError(name, f"option {name} must be {what}, got {value!r} ({type(value).__name__})")
    if isinstance(value, numbers.Real) and math.isnan(value):
        raise OptionError(name, f"option {name} must be a number, got NaN")
    return value


def fraction(name: str, value, *, allow_zero: bool = False) -> float:
    """A share in (0, 1] (or [0, 1] with ``allow_zero``) as float."""
    v = float(_number(name, value))
    lo_ok = v >= 0 if allow_zero else v > 0
    if not (lo_ok and v <= 1):
        raise OptionError(name, f"option {name} must be in {'[0' if allow_zero else '(0'}, 1], got {value!r}")
    return v


def unit_interval(name: str, value) -> float:
    """A number in [0, 1] (distances in pixel units, weights)."""
    return fraction(name, value, allow_zero=True)


def positive(name: str, value) -> float:
    """A number > 0 as float."""
    v = float(_number(name, value))
    if not v > 0:
        raise OptionError(name, f"option {name} must be a number > 0, got {value!r}")
    return v


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int within [minimum, maximum] (either bound optional)."""
    v = int(_number(name, value, numbers.Integral))
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise OptionError(name, f"option {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return v


def seed(value, name: str = "seed") -> int:
    """A random seed: an integer >= 0 (numpy's generators refuse negative seeds)."""
    return integer(name, value, minimum=0)


def choice(name: str, value, choices) -> str:
    if isinstance(value, bool) or value not in choices:
        raise OptionError(name, f"option {name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def boolean(name: str, value) -> bool:
    """``True`` or ``False`` (not 0 / 1 / "yes")."""
    if not isinstance(value, bool):
        raise OptionError(name, f"option {name} must be True or False, got {value!r} ({type(value).__name__})")
    return value
