"""The command line's flag parser; it lives in :mod:`vlprune.flags` (the bench and eval layers use it
too, below the CLI). Re-exported here under its command-line name."""

from vlprune.flags import FlagError, literal, parse_assignment, parse_key_values, parse_method_options, path_arg

__all__ = ["FlagError", "literal", "parse_assignment", "parse_key_values", "parse_method_options", "path_arg"]
