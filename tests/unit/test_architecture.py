"""The package's shape, checked from its source: imports run one way (cli -> targets / export / probe
-> render -> config -> layout / errors), with no cycle (lazy imports inside functions included) and no
module importing another module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "scaleout"

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
    "scaleout.config": ("scaleout.render", "scaleout.targets", "scaleout.cli", "scaleout.probe",
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


def _defined_private_attributes(tree: ast.AST) -> set[str]:
    """`_x` names this module defines itself: methods, class attributes, and `self._x = ...` assignments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.startswith("_"):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            names.add(node.value)  # __slots__ entries
    return names


def test_no_private_attributes_of_other_modules():
    """`obj._x` only where this module defines `_x` itself: no reaching into another module's objects."""
    bad = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _defined_private_attributes(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__")
                    and node.attr not in own):
                bad.append(f"{mod}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)


# Modules over the size a newcomer reads in one go, each capped where it stands until it is split (issue 21).
MAX_MODULE_LINES = 500
OVERSIZED: dict[str, int] = {}
MAX_FLAT_MODULES = 10  # modules directly in scaleout/, beside the rooms


def test_module_sizes():
    big = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    bad = [f"{m}: {n} lines (at most {OVERSIZED.get(m, MAX_MODULE_LINES)})" for m, n in sorted(big.items())
           if n > OVERSIZED.get(m, MAX_MODULE_LINES)]
    assert not bad, "\n".join(bad)


def test_flat_modules_stay_few():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= MAX_FLAT_MODULES, flat


def test_the_cli_offers_the_templates_scaffold_knows():
    """layout.TEMPLATE_NAMES (the `--template` choices) and scaffold.TEMPLATES (their settings) list the same."""
    from scaleout.layout import TEMPLATE_NAMES
    from scaleout.scaffold import TEMPLATES

    assert tuple(TEMPLATES) == TEMPLATE_NAMES


def _engine_uses(path: Path, engine_fixtures: set[str]) -> list[str]:
    """Where a test file asks for the engine: an e2e or browser mark (on a test, a module or a parameter),
    a test or fixture taking a fixture that needs the engine, `getfixturevalue` of one, or an e2e module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in ("e2e", "browser") and \
                isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
            found.append(f"{where}: pytest.mark.{node.attr}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            wanted = sorted({a.arg for a in node.args.args} & engine_fixtures)
            if wanted:
                found.append(f"{where}: {node.name} takes {', '.join(wanted)}")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getfixturevalue" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value in engine_fixtures:
            found.append(f"{where}: getfixturevalue({node.args[0].value!r})")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.e2e"):
            found.append(f"{where}: imports {node.module}")
    return found


def test_unit_tests_need_no_engine():
    """tests/unit/ is pure: what needs the engine (nginx -t in the balancer image included) is in tests/e2e/."""
    from tests.conftest import NEEDS_ENGINE

    # the conftest's engine fixtures; e2e modules' own fixtures are out of reach unless imported (refused)
    engine_fixtures = set(NEEDS_ENGINE)
    bad = [use for p in sorted((ROOT / "tests/unit").rglob("test_*.py")) for use in _engine_uses(p, engine_fixtures)]
    assert not bad, "\n".join(bad)
