"""No import circles in ``planner/`` or ``executor/``, counting imports inside functions, and no
function-level imports except of the optional or heavy third-party packages listed here.

Every module is parsed with :mod:`ast` (nothing is imported), every ``import`` statement at any
depth is collected, and the graph of first-party modules is searched for cycles. A function-level
import hides a circle from Python (it works because the import runs late) but not from this test.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planner", "executor")

#: the only packages a function may import, each with why it is not imported at the top, and
#: the path prefixes (relative to the repository) allowed to import it late. Keep it short: a
#: new entry needs a reason a reviewer accepts (optional on a GX, or heavy at start-up).
ALLOWED_LATE = {
    "alembic": ("~0.2 s to import; only when the schema is behind", ("planner/history/",)),
    "pvlib": ("~0.5 s to import; only when the Open-Meteo PV provider forecasts",
              ("planner/providers/pv/",)),
    "scipy": ("cvxpy imports scipy.stats for one atom Helios does not use: stubbed at start-up, "
              "imported on first use", ("planner/optimize/_cvxpy.py",)),
    "cvxpy": ("imported once with scipy.stats stubbed (start-up time)",
              ("planner/optimize/_cvxpy.py",)),
    "highspy": ("HiGHS' banner is silenced when its first object is made",
                ("planner/optimize/_cvxpy.py",)),
    "jeepney": ("optional D-Bus library", ("executor/drivers/",)),
    "dbus": ("optional D-Bus library (dbus-python ships with Venus OS)", ("executor/drivers/",)),
    "pymodbus": ("optional Modbus library", ("executor/drivers/",)),
    "sqlalchemy": ("optional in the executor: absent on a GX", ("executor/",)),
    "yaml": ("optional in the executor: absent on a GX (JSON configs work without it)",
             ("executor/",)),
    "urllib.request": ("pulls in ssl (~8 MB RSS) on a GX; only for plan.source: http",
                       ("executor/plansource.py",)),
    "urllib.error": ("as urllib.request", ("executor/plansource.py",)),
}


@dataclass(frozen=True)
class Import:
    """One import statement (one per name for ``import a, b``)."""

    source: str  # importing module
    module: str  # the module named by the statement, absolute (``from a import b``: a)
    names: tuple[str, ...]  # ``from a import b, c``: a.b, a.c (modules or names in a)
    path: str  # file, relative to the repository
    line: int
    late: bool  # inside a function

    def targets(self, modules: set[str]) -> tuple[str, ...]:
        """What the statement loads: ``from a import b`` loads module a.b if there is one,
        else a (b is a name in a); the parent packages every import loads are not counted."""
        if not self.names:
            return (self.module,)
        return tuple(n if n in modules else self.module for n in self.names)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    rel = str(path.relative_to(ROOT))
    found: list[Import] = []

    def visit(node: ast.AST, late: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, (), rel, child.lineno, late)
                             for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[: len(package) - (child.level - 1)] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                found.append(Import(name, module, tuple(f"{module}.{a.name}" for a in child.names),
                                    rel, child.lineno, late))
            visit(child, late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.Lambda)))

    visit(tree, False)
    return found


def _resolve(target: str, modules: set[str]) -> str | None:
    """The first-party module an import loads (longest existing prefix), or None."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def _graph() -> tuple[dict[str, dict[str, Import]], list[Import]]:
    """Module → {imported first-party module: the statement}, and every import statement."""
    files = _files()
    modules = set(files)
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    every: list[Import] = []
    for name, path in files.items():
        for imp in _imports(name, path):
            every.append(imp)
            for target in imp.targets(modules):
                dep = _resolve(target, modules)
                if dep is not None and dep != name:
                    graph[name].setdefault(dep, imp)
    return graph, every


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_one_cycle(graph, comp) for comp in sorted(components)]


def _one_cycle(graph: dict[str, dict[str, Import]], comp: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(comp)
    start = comp[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return paths[v] + [start]
            if w in members and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def _describe(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:], strict=False):
        imp = graph[a][b]
        where = f"{imp.path}:{imp.line}{', in a function' if imp.late else ''}"
        steps.append(f"    {a} -> {b}  ({where})")
    return "\n".join(steps)


def _others(graph: dict[str, dict[str, Import]], cycle: list[str]) -> list[str]:
    """The other modules in the same circle (strongly connected component) as ``cycle``."""
    def reach(v: str, edges) -> set[str]:
        seen, todo = {v}, [v]
        while todo:
            for w in edges(todo.pop()):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    start = cycle[0]
    forward = reach(start, lambda v: graph[v])
    backward = reach(start, lambda v: [u for u in graph if v in graph[u]])
    return sorted((forward & backward) - set(cycle))


def _allowed(module: str) -> str | None:
    return next((pkg for pkg in ALLOWED_LATE if module == pkg or module.startswith(pkg + ".")),
                None)


def _late_problems(every: list[Import], modules: set[str]) -> list[str]:
    """What is wrong with each function-level import (one line per statement)."""
    problems = []
    for imp in every:
        if not imp.late:
            continue
        where = f"{imp.path}:{imp.line}"
        dep = next((d for d in (_resolve(t, modules) for t in imp.targets(modules)) if d),
                   None)
        if dep is not None:
            problems.append(f"{where}: imports first-party {dep} in a function (import it at "
                            "the top; a circle needs a new layer)")
            continue
        allowed = _allowed(imp.module)
        if allowed is None:
            problems.append(f"{where}: imports {imp.module} in a function (not an optional or "
                            "heavy package: import it at the top)")
            continue
        reason, prefixes = ALLOWED_LATE[allowed]
        if not imp.path.startswith(prefixes):
            problems.append(f"{where}: imports {allowed} in a function; allowed late only in "
                            f"{', '.join(prefixes)} ({reason})")
            continue
        text = (ROOT / imp.path).read_text(encoding="utf-8").splitlines()
        here, above = text[imp.line - 1], text[imp.line - 2] if imp.line > 1 else ""
        if "#" not in here and "#" not in above:
            problems.append(f"{where}: late import of {allowed} needs a short comment saying "
                            "why (optional or heavy)")
    return problems


def test_no_import_cycles():
    graph, _ = _graph()
    cycles = _cycles(graph)
    text = "\n".join(f"  {' -> '.join(c)}" + (f" (and {', '.join(_others(graph, c))})"
                                              if _others(graph, c) else "")
                     + f"\n{_describe(graph, c)}" for c in cycles)
    assert not cycles, f"{len(cycles)} import circle(s):\n{text}"


def test_no_function_level_imports_but_optional_or_heavy_packages():
    _, every = _graph()
    problems = _late_problems(every, set(_files()))
    assert not problems, "\n".join(problems)


# -- the checker itself, on a toy package ---------------------------------------------------


@pytest.fixture
def toy(tmp_path, monkeypatch):
    pkg = tmp_path / "planner"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (tmp_path / "executor").mkdir()
    (tmp_path / "executor" / "__init__.py").write_text("")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    return pkg


def test_a_circle_hidden_in_a_function_is_found(toy):
    (toy / "a.py").write_text("from planner import b\n")
    (toy / "b.py").write_text("def f():\n    from planner.sub import c\n")
    (toy / "sub" / "c.py").write_text("from . import d\n")
    (toy / "sub" / "d.py").write_text("import planner.a\n")
    graph, every = _graph()
    assert _cycles(graph) == [["planner.a", "planner.b", "planner.sub.c", "planner.sub.d",
                               "planner.a"]]
    assert "planner/b.py:2, in a function" in _describe(graph, _cycles(graph)[0])
    assert _late_problems(every, set(_files())) == [
        "planner/b.py:2: imports first-party planner.sub.c in a function (import it at the "
        "top; a circle needs a new layer)"]


def test_late_imports_of_other_packages_are_judged(toy):
    (toy / "p.py").write_text("def f():\n    import json\n\n\ndef g():\n    import pvlib\n")
    (toy / "sub" / "q.py").write_text("def f():\n    import alembic  # heavy\n")
    drivers = toy.parent / "executor" / "drivers"
    drivers.mkdir()
    (drivers / "__init__.py").write_text("")
    (drivers / "x.py").write_text("def f():\n    import jeepney\n\n\ndef g():\n"
                                  "    import jeepney  # optional\n")
    (toy / "sub" / "r.py").write_text("def f():\n    from alembic import command\n")
    _, every = _graph()
    problems = _late_problems(every, set(_files()))
    assert problems == [
        "planner/p.py:2: imports json in a function (not an optional or heavy package: "
        "import it at the top)",
        "planner/p.py:6: imports pvlib in a function; allowed late only in "
        f"planner/providers/pv/ ({ALLOWED_LATE['pvlib'][0]})",
        "planner/sub/q.py:2: imports alembic in a function; allowed late only in "
        f"planner/history/ ({ALLOWED_LATE['alembic'][0]})",
        "planner/sub/r.py:2: imports alembic in a function; allowed late only in "
        f"planner/history/ ({ALLOWED_LATE['alembic'][0]})",
        "executor/drivers/x.py:2: late import of jeepney needs a short comment saying why "
        "(optional or heavy)",
    ]
