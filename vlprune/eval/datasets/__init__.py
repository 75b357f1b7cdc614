"""Built-in benchmarks, one module each; importing this package registers them (looked up by name with
:mod:`vlprune.eval.catalog`)."""

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
