"""Built-in benchmarks; importing this package registers them."""

from vlprune.eval.datasets import (  # noqa: F401
    aitw,
    androidcontrol,
    chartqa,
    docvqa,
    gui_odyssey,
    mind2web,
    ocrbench,
    screenspot,
)
