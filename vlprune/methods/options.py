"""Moved to :mod:`vlprune.options` (the shared option rules, a leaf module every layer imports)."""

from vlprune.options import *  # noqa: F401,F403
from vlprune.options import OptionError  # noqa: F401
