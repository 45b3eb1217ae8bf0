"""The package's shape, checked from its source: imports run one way (cli -> targets / export / probe
-> render -> config -> layout / errors), with no cycle (lazy imports inside functions included) and no
module importing another module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "scaleout"

# the lowest layers may import only these (besides the standard library and third-party packages)
ALLOWED = {
    "scaleout.layout": set(),
    "scaleout.errors": set(),
    "scaleout.console": set(),
    "scaleout.files": {"scaleout.errors", "scaleout.layout"},
}
# nothing below these layers may import them
FORBIDDEN_PREFIXES = {
    "scaleout.render": ("scaleout.targets", "scaleout.cli", "scaleout.probe", "scaleout.export", "scaleout.report"),
    "scaleout.config": ("scaleout.render", "scaleout.targets", "scaleout.cli", "scaleout.files", "scaleout.probe",
                        "scaleout.adopt", "scaleout.export", "scaleout.report"),
    "scaleout.targets": ("scaleout.cli", "scaleout.report", "scaleout.probe"),
    "scaleout.probe": ("scaleout.cli", "scaleout.report"),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every `import scaleout...` / `from scaleout... import ...`, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scaleout") and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names if a.name.startswith("scaleout"))
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for target, names in imports_of(path):
            # `from scaleout.render import plan_for` is the package; `from scaleout import report` a module
            for name in names or [""]:
                candidate = f"{target}.{name}" if name else target
                dep = candidate if candidate in MODULES else target
                if dep in MODULES and dep != mod:
                    edges[mod].add(dep)
    return edges


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_no_private_names_across_modules():
    bad = []
    for mod, path in MODULES.items():
        for target, names in imports_of(path):
            bad += [f"{mod} imports {target}.{n}" for n in names
                    if n.startswith("_") and not n.endswith("__") and target != mod]
    assert not bad, "\n".join(bad)


def test_imports_run_one_way():
    edges = graph()
    bad = []
    for mod, deps in edges.items():
        if mod in ALLOWED:
            bad += [f"{mod} -> {d}" for d in deps - ALLOWED[mod]]
        for prefix, forbidden in FORBIDDEN_PREFIXES.items():
            if mod == prefix or mod.startswith(prefix + "."):
                bad += [f"{mod} -> {d}" for d in deps if d.startswith(forbidden)]
        if mod != "scaleout.__main__" and not mod.startswith("scaleout.cli"):
            bad += [f"{mod} -> {d}" for d in deps if d.startswith("scaleout.cli")]
    assert not bad, "\n".join(sorted(bad))


def test_typer_is_imported_by_the_cli_only():
    users = sorted(m for m, p in MODULES.items() if "import typer" in p.read_text(encoding="utf-8"))
    assert users and all(m.startswith("scaleout.cli.") for m in users), users
