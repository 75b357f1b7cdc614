"""Pure selection algorithms (numpy / numba / torch only): no model, no I/O."""
