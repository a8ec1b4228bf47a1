"""The import graph of bridge/ and export_onnx/, read from the source with `ast`: no cycles, the layers
of bridge point one way, bridge never reaches the torch side, and no module imports another's
private names.

Every import statement counts: at the top of a module, inside functions (lazy imports) and under
`if TYPE_CHECKING:`. Imports built from strings at run time (importlib) are not seen.

The layers of bridge (docs/architecture.md), each importing only from itself and the ones before it:

    core <- io <- runtime <- daemon <- live <- surface <- cli

bridge/__init__.py and bridge/__main__.py are the facade above them all; no layer imports the facade.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bridge", "export_onnx")
LAYERS = ("core", "io", "runtime", "daemon", "live", "surface", "cli")
# what export_onnx may use of bridge: the layers below the daemon (data, files, the package format
# and the runtime to check its own packages); never the daemon, live or cli
TORCH_SIDE_MAY_USE = ("bridge.core", "bridge.io", "bridge.runtime")
CORE_THIRD_PARTY = {"numpy"}
# `from X import _name` across modules that cannot be fixed (none today)
PRIVATE_IMPORTS_ALLOWED: set[tuple[str, str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "models" in path.relative_to(ROOT / pkg).parts[:1]:
                continue
            out[module_name(path)] = path
    return out


MODULES = source_files()


class Import:
    """One imported thing: `module` (absolute), the `name` taken from it (None for `import m`), the
    line, and whether `module.name` is itself a module of ours."""

    def __init__(self, module: str, name: str | None, line: int):
        self.module, self.name, self.line = module, name, line

    @property
    def target(self) -> str:
        """The module of ours this import loads: `module.name` when that is a submodule, else `module`."""
        if self.name is not None and f"{self.module}.{self.name}" in MODULES:
            return f"{self.module}.{self.name}"
        return self.module


def imports_of(name: str, path: Path, tree: ast.AST | None = None) -> list[Import]:
    """Every import in a module, wherever it stands (ast.walk visits function bodies and if-blocks)."""
    tree = tree or ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(Import(a.name, None, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            out.extend(Import(module, a.name, node.lineno) for a in node.names)
    return out


def graph(modules=None) -> dict[str, set[str]]:
    """module -> the modules of ours it imports."""
    modules = MODULES if modules is None else modules
    return {name: {imp.target for imp in imports_of(name, path) if imp.target in modules and imp.target != name}
            for name, path in modules.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a cycle path."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(_cycle_path(g, sorted(comp)))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _cycle_path(g, comp: list[str]) -> list[str]:
    """One concrete cycle through the component's first module, for the failure message."""
    start, members = comp[0], set(comp)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(g[path[-1]] & members):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return comp


def layer(module: str) -> int | None:
    """The index of a bridge module's layer; None for the facade (bridge, bridge.__main__)."""
    parts = module.split(".")
    if parts[0] != "bridge" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_the_walk_sees_every_kind_of_import():
    src = ("import a.b\nfrom . import sib\nfrom .x import y\nfrom typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from ..up import Thing\n"
           "def f():\n    from ..core import notes\n")
    got = {(i.module, i.name) for i in imports_of("bridge.daemon.m", ROOT / "m.py", ast.parse(src))}
    assert got == {("a.b", None), ("bridge.daemon", "sib"), ("bridge.daemon.x", "y"), ("typing", "TYPE_CHECKING"),
                   ("bridge.up", "Thing"), ("bridge.core", "notes")}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_both_packages_are_found():
    assert {"bridge.core.notes", "bridge.runtime.package", "bridge.daemon.server", "bridge.cli",
            "export_onnx.export", "export_onnx.tiny"} <= set(MODULES)


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_bridge_layers_point_one_way():
    wrong = []
    for name, targets in graph().items():
        if not name.startswith("bridge"):
            continue
        for t in targets:
            if not t.startswith("bridge"):
                continue
            if layer(t) is None and t in ("bridge", "bridge.__main__"):
                if name not in ("bridge", "bridge.__main__"):
                    wrong.append(f"{name} imports the facade {t}")
            elif layer(name) is not None and layer(t) > layer(name):
                wrong.append(f"{name} ({LAYERS[layer(name)]}) imports {t} ({LAYERS[layer(t)]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_bridge_never_imports_torch_or_the_torch_side():
    bad = [f"{name}:{imp.line} imports {imp.module}" for name, path in MODULES.items() if name.startswith("bridge")
           for imp in imports_of(name, path)
           if imp.module.split(".")[0] in ("torch", "export_onnx", "benchmarks", "onnx")]
    assert not bad, "\n".join(bad)


def test_core_is_numpy_only():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = [f"{name}:{imp.line} imports {imp.module}" for name, path in MODULES.items() if layer(name) == 0
           for imp in imports_of(name, path)
           if imp.module.split(".")[0] not in stdlib | CORE_THIRD_PARTY | {"bridge"}]
    assert not bad, "\n".join(bad)


def test_the_torch_side_uses_only_the_lower_layers_of_bridge():
    bad = [f"{name}:{imp.line} imports {imp.target}" for name, path in MODULES.items()
           if name.startswith("export_onnx") for imp in imports_of(name, path)
           if imp.target.split(".")[0] == "bridge" and imp.target != "bridge"
           and not imp.target.startswith(TORCH_SIDE_MAY_USE)]
    assert not bad, "\n".join(bad)


def _private(name: str | None) -> bool:
    return bool(name) and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_aliases(name: str, path: Path, tree: ast.AST, modules) -> dict[str, str]:
    """Local names bound to one of our modules: `import a.b as m`, `from a import b [as m]`."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update({a.asname: a.name for a in node.names if a.asname and a.name in modules})
        elif isinstance(node, ast.ImportFrom):
            for imp, a in zip(imports_of(name, path, ast.Module([node], [])), node.names):
                if imp.target != imp.module and imp.target in modules:
                    out[a.asname or a.name] = imp.target
    return out


def test_no_module_imports_another_modules_private_names():
    packages = PACKAGES + ("benchmarks",)
    modules = source_files(packages)
    bad = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for imp in imports_of(name, path, tree):
            if imp.module.split(".")[0] in packages and imp.module != name and imp.target == imp.module \
                    and _private(imp.name) and (name, imp.module, imp.name) not in PRIVATE_IMPORTS_ALLOWED:
                bad.append(f"{name}:{imp.line} imports {imp.module}.{imp.name}")
        aliases = module_aliases(name, path, tree, modules)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr) \
                    and aliases.get(node.value.id, name) != name:
                bad.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)
