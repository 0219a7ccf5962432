"""The package's shape: no import cycles, shared code imports no family, families
import no other family, and only the registry and the families tell families apart."""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "yolact"
SHARED = (
    "yolact.core", "yolact.engine", "yolact.data", "yolact.io", "yolact.backends", "yolact.bench",
)  # fmt: skip
FAMILIES = "yolact.models"
# What every family shares sits at the bottom: it imports none of these (runtime policy,
# yolact.runtime, and the streaming loops, yolact.inference, sit beside it).
ABOVE_CORE = (
    "yolact.io", "yolact.engine", "yolact.data", "yolact.cli", "yolact.apps",
    "yolact.backends", "yolact.models", "yolact.registry", "yolact.bench",
    "yolact.predictor", "yolact.export", "yolact.slim", "yolact.demo",
)  # fmt: skip
KINDS = ("mask_rcnn",)  # YOLACT's kind is also the package and logger name


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports: at module level, inside functions,
    and under ``if TYPE_CHECKING:`` (an annotation-only import is an edge too, so a
    cycle through one is a cycle)."""
    root = package.name
    paths = sorted(package.rglob("*.py"))
    modules = {_module_name(p, package) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path, package)
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.split(".")[0] == root)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] != root:
                    continue
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), else None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """``core module imports X`` for every import of yolact.core into ABOVE_CORE."""
    return [
        f"{module} imports {target}"
        for module, imported in sorted(graph.items())
        if _within(module, ("yolact.core",))
        for target in sorted(imported)
        if _within(target, ABOVE_CORE)
    ]


def test_the_layering_check_sees_an_import_from_above() -> None:
    graph = {
        "yolact.core.a": {"yolact.core.b", "yolact.io.images", "yolact.registry"},
        "yolact.core.b": {"yolact.runtime.device"},
        "yolact.io.images": {"yolact.core.a"},
        "yolact.corelike": {"yolact.cli.main"},
    }
    assert layering_violations(graph) == [
        "yolact.core.a imports yolact.io.images",
        "yolact.core.a imports yolact.registry",
    ]


def test_core_imports_nothing_above_it() -> None:
    bad = layering_violations(import_graph())
    assert not bad, "\n".join(bad)


def _family(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:3]) if module.startswith(FAMILIES + ".") and len(parts) > 2 else None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_type_only_cycle_is_a_cycle(tmp_path: Path) -> None:
    """``a`` imports ``b`` for annotations only, ``b`` imports ``a``: a cycle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.b import B\n"
        "def f(x: B) -> None: ...\n"
    )
    (package / "b.py").write_text("from pkg import a\nclass B: ...\n")
    graph = import_graph(package)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_no_import_cycles_in_the_package() -> None:
    graph = import_graph()
    assert "yolact.registry" in graph and len(graph) > 60
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_shared_code_imports_no_family_and_families_not_each_other() -> None:
    bad = []
    for module, imported in import_graph().items():
        own = _family(module)
        for target in imported:
            other = _family(target)
            if other is None:
                continue
            if module.startswith(SHARED):
                bad.append(f"{module} imports the family module {target}")
            elif own is not None and other != own:
                bad.append(f"{module} imports {target} of another family")
    assert not bad, "\n".join(bad)


def family_mentions(path: Path) -> list[str]:
    """Names of family types and functions, and family kinds as string values, in a
    file's code (docstrings and comments aside)."""
    names = re.compile(r"\w*(RCNN|Rcnn|rcnn)\w*|Yolact\w+")
    found = []
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if (
                tok.type == tokenize.NAME
                and names.fullmatch(tok.string)
                or tok.type == tokenize.STRING
                and tok.string.strip("\"'") in KINDS
            ):
                found.append(f"{tok.start[0]}: {tok.string}")
    return found


def test_only_the_registry_and_the_families_tell_families_apart() -> None:
    """Shared code, the CLIs and the user commands name no family type, function or kind."""
    bad = []
    areas = ("core", "engine", "data", "io", "cli", "bench", "backends")
    apps = [PACKAGE / f"{name}.py" for name in ("demo", "export", "slim")]
    for path in apps + [p for area in areas for p in sorted((PACKAGE / area).rglob("*.py"))]:
        bad += [f"{path.relative_to(PACKAGE)}:{m}" for m in family_mentions(path)]
    assert not bad, "\n".join(bad)
    # The check itself sees what it looks for.
    assert len(family_mentions(PACKAGE / "registry.py")) >= 2
