"""Test-suite settings: skipped tests list their reason in the default output (``-rs``), so a missing
image corpus or optional dependency is visible without flags."""


def pytest_configure(config):
    chars = config.option.reportchars or ""
    if not any(c in chars for c in "sSaA"):
        config.option.reportchars = chars + "s"
