"""The house rules, read from the source with ast (nothing is imported): each floor of bark_core imports
only from the floors below it, no module imports its own importer, rooms stay small enough to read, and
the front ends use only bark_core's public names."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "bark_core"

# Floors from the bottom up. A module may import from its own floor or any floor below, never above.
# Keys are module names relative to bark_core; a subpackage name covers all of its modules; "" is
# bark_core/__init__.py, the public face that re-exports the API.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("constants", "errors", "limits", "fileio", "hub", "audio_io")),
    ("data", ("artifacts", "rights", "voices", "edit", "cache", "plots")),
    ("models", ("models",)),
    ("sampling", ("sampling",)),
    ("stages", ("stages",)),
    ("quality", ("quality",)),
    ("cloning", ("cloning",)),
    ("label", ("label",)),
    ("production", ("script", "jobs")),
    ("cli", ("cli",)),
    ("api", ("",)),
]

MAX_LINES = 500
# Rooms allowed over MAX_LINES, each with its reason. Keep this short.
OVERSIZED: dict[str, str] = {}


def _modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of a package (``__init__`` named as its package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of ``known`` that ``name`` imports anywhere in its body (lazy and TYPE_CHECKING imports included).

    Importing ``a.b.c`` also runs ``a.b``'s ``__init__``, so that counts as an import of the package too
    when the importer lives outside it.
    """
    found: set[str] = set()
    pkg = _package_of(name, path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                targets.append(sub if sub in known else mod)
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if not target or target == name:
                continue
            found.add(target)
            parent = target.rpartition(".")[0]
            while parent.count("."):  # subpackages above the target (not the root package itself)
                if not name.startswith(parent + ".") and name != parent:
                    found.add(parent)
                parent = parent.rpartition(".")[0]
    return found


def _graph(package: Path) -> dict[str, set[str]]:
    known = _modules(package)
    return {name: _imports(name, path, known) for name, path in known.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _floor(module: str) -> int:
    rel = module.removeprefix("bark_core").removeprefix(".")
    head = rel.split(".")[0]
    for level, (_, names) in enumerate(LAYERS):
        if head in names:
            return level
    raise KeyError(module)


def test_every_module_has_a_floor():
    unplaced = []
    for m in _modules(CORE):
        try:
            _floor(m)
        except KeyError:
            unplaced.append(m)
    assert not unplaced, f"add these modules to LAYERS in {Path(__file__).name}: {unplaced}"


def test_no_import_circles():
    for package in ("bark_core", "bark_nodes", "widgets"):
        circles = _circles(_graph(ROOT / package))
        assert not circles, f"import circles in {package}: {circles}"


def test_imports_point_down_the_floors():
    upward = []
    for module, targets in _graph(CORE).items():
        for target in targets:
            if _floor(target) > _floor(module):
                upward.append(f"{module} ({LAYERS[_floor(module)][0]}) imports {target} "
                              f"({LAYERS[_floor(target)][0]})")
    assert not upward, "imports that point up a floor:\n" + "\n".join(sorted(upward))


def test_rooms_stay_readable():
    big = []
    for package in ("bark_core", "bark_nodes", "widgets"):
        for name, path in _modules(ROOT / package).items():
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES and name not in OVERSIZED:
                big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not big, f"modules over {MAX_LINES} lines (split them, or add a reason to OVERSIZED):\n" + "\n".join(big)


def _exports(module: str) -> set[str] | None:
    """``__all__`` of a bark_core package ``__init__`` (None for plain modules: they are not public)."""
    path = CORE.parent / Path(*module.split(".")) / "__init__.py"
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _front_end_uses(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for each bark_core name a front-end file imports or reads as an attribute."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    uses: list[tuple[str, str, int]] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("bark_core"):
            for a in node.names:
                uses.append((node.module, a.name, node.lineno))
                if (CORE.parent / Path(*f"{node.module}.{a.name}".split("."))).is_dir():
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("bark_core"):
                    if a.name != "bark_core" and _exports(a.name) is None:
                        uses.append((a.name.rpartition(".")[0], a.name.rpartition(".")[2], node.lineno))
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "bark_core"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.append((aliases[node.value.id], node.attr, node.lineno))
    return uses


@pytest.mark.parametrize("front_end", ["bark_nodes", "widgets"])
def test_front_ends_use_only_public_names(front_end):
    private = []
    for path in sorted((ROOT / front_end).rglob("*.py")):
        for module, name, line in _front_end_uses(path):
            exported = _exports(module)
            if _exports(f"{module}.{name}") is not None:  # a subpackage itself is public
                continue
            if exported is None or name not in exported:
                private.append(f"{path.relative_to(ROOT)}:{line}: {module}.{name}")
    assert not private, ("front ends must use bark_core's public names (bark_core/__init__.py or a subpackage's "
                         "__all__):\n" + "\n".join(private))


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The walker itself: a lazy upward import and a two-module circle are both seen."""
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from .a import x\n")
    (pkg / "low" / "a.py").write_text("def x():\n    from ..high import y\n    return y\n")
    (pkg / "high.py").write_text("from .low.a import x\ny = 1\n")
    graph = _graph(pkg)
    assert "pkg.high" in graph["pkg.low.a"]
    assert "pkg.low" in graph["pkg.high"]  # importing pkg.low.a runs pkg/low/__init__.py first
    assert _circles(graph) == [["pkg.high", "pkg.low", "pkg.low.a"]]


def test_the_public_api_is_importable_by_name():
    """Every name a package ``__all__`` lists exists once the package is imported."""
    import importlib

    missing = []
    for module in ["bark_core", *(f"bark_core.{p.name}" for p in CORE.iterdir() if (p / "__init__.py").is_file())]:
        mod = importlib.import_module(module)
        missing += [f"{module}.{n}" for n in sorted(_exports(module) or ()) if not hasattr(mod, n)]
    assert not missing, missing


def test_layer_table_has_no_stale_entries():
    names = defaultdict(list)
    for m in _modules(CORE):
        rel = m.removeprefix("bark_core").removeprefix(".")
        names[rel.split(".")[0]].append(m)
    stale = [n for _, group in LAYERS for n in group if n not in names]
    assert not stale, f"LAYERS names modules that no longer exist: {stale}"
