"""Built-in benchmarks; importing this package registers them."""

from vlprune.eval.datasets import (  # noqa: F401
    ai2d,
    aitw,
    androidcontrol,
    chartqa,
    docvqa,
    gui_odyssey,
    mind2web,
    mmlongbench,
    ocrbench,
    olmocr,
    screenspot,
)
