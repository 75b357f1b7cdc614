"""Package layout: vlprune's import graph has no cycles.

The graph is built from the source with ``ast`` (nothing is imported): one node per module under
``vlprune/`` (a package is its ``__init__``), an edge for every ``import vlprune...`` /
``from vlprune... import ...`` anywhere in a file -- at module level, inside functions, under
``TYPE_CHECKING`` -- since a function-level import that only dodges a cycle is still a cycle. Importing
``a.b.c`` also runs the ``__init__`` of ``a.b``, so it is an edge to ``a.b`` too; an edge to one of the
module's own enclosing packages is left out (they are always initialised before the module runs).
``importlib.import_module`` with a computed name is not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir`` (its parent is the root)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(node: ast.AST, module: str, is_package: bool, top: str) -> list[str]:
    """Dotted names an import statement brings in (``from p import x`` gives ``p.x``: a module or not)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == top or a.name.startswith(top + ".")]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: level 1 is the module's own package
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    if base != top and not base.startswith(top + "."):
        return []
    return [base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"]


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules its imports run (see the module docstring)."""
    mods = module_names(package_dir)
    top = package_dir.name
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py", top):
                parts = name.split(".")
                for k in range(1, len(parts) + 1):  # the module itself and every package above it
                    prefix = ".".join(parts[:k])
                    if prefix in mods:
                        targets.add(prefix)
        graph[module] = {t for t in targets if t != module and not module.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def describe(graph: dict[str, set[str]], comps: list[list[str]]) -> str:
    lines = []
    for comp in comps:
        inside = set(comp)
        lines.append(f"cycle among {len(comp)} modules: {', '.join(comp)}")
        lines += [f"    {m} -> {', '.join(sorted(graph[m] & inside))}" for m in comp]
    return "\n".join(lines)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


# ---------------------------------------------------------------------------------------------- the checker
def test_a_function_level_import_closes_a_cycle(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n    return b\n",
        "pkg/b.py": "import pkg.a\n",
        "pkg/c.py": "from pkg.a import f\n",  # into the cycle, not part of it
    })
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    assert "cycle among 2 modules: pkg.a, pkg.b" in describe(graph, cycles(graph))


def test_importing_a_submodule_runs_its_package_init(tmp_path):
    """``pkg.c`` imports ``pkg.sub.d``; ``pkg/sub/__init__.py`` imports ``pkg.c``: c -> sub -> c."""
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/c.py": "from pkg.sub.d import x\n",
        "pkg/sub/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n",
        "pkg/sub/d.py": "from . import e\nfrom .. import c as _c\nx = 1\n",
        "pkg/sub/e.py": "from .d import x\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.c"] == {"pkg.sub", "pkg.sub.d"}
    assert graph["pkg.sub"] == {"pkg.c"}
    assert graph["pkg.sub.d"] == {"pkg.sub.e", "pkg.c"}  # its own package pkg.sub is not an edge
    assert graph["pkg.sub.e"] == {"pkg.sub.d"}
    assert cycles(graph) == [["pkg.c", "pkg.sub", "pkg.sub.d", "pkg.sub.e"]]


def test_a_layered_package_has_no_cycle(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.top import run\n",
        "pkg/low.py": "import os\n",
        "pkg/mid.py": "from pkg import low\n",
        "pkg/top.py": "def run():\n    from pkg.mid import low\n",
    })
    graph = import_graph(pkg)
    assert graph == {"pkg": {"pkg.top"}, "pkg.low": set(), "pkg.mid": {"pkg.low"}, "pkg.top": {"pkg.mid"}}
    assert cycles(graph) == []


# ---------------------------------------------------------------------------------------------- vlprune
@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT / "vlprune")


def test_the_graph_sees_known_edges(graph):
    """A sanity check of the parse on the real package: a module-level, a function-level and a
    ``from package import module`` edge."""
    assert "vlprune.eval.base" in graph["vlprune.eval.datasets._common"]
    assert "vlprune.eval.paper_suites" in graph["vlprune.eval.suites"]  # inside list_suites()
    assert "vlprune.eval.datasets.aitw" in graph["vlprune.eval.datasets"]


def test_vlprune_has_no_import_cycles(graph):
    comps = cycles(graph)
    assert not comps, "import cycles in vlprune/:\n" + describe(graph, comps)
