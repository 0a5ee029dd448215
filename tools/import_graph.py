"""Which module of ``beexnp`` imports which: the package's dependency graph, read from the source.

    python tools/import_graph.py                # one line per module: module -> what it imports
    python tools/import_graph.py --root DIR     # another checkout's package (e.g. an older commit)

Only imports of ``beexnp`` modules count, at module level or inside functions
(both are arrows a reader must follow).  ``tests/test_layout.py`` uses
``import_graph`` to check that the graph has no cycle and that inference and
the layers never import the trainer or the command line.
"""
import argparse
import ast
from pathlib import Path


def module_name(path, root):
    """beexnp/glue/reader.py -> 'glue.reader'; beexnp/glue/__init__.py -> 'glue'."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "__init__"


def imported_modules(tree, modules):
    """The package's modules that ``tree`` imports (``from beexnp.x import y`` counts ``x``, or ``x.y``
    when that is itself a module)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("beexnp"):
            base = node.module[len("beexnp"):].lstrip(".")
            names = [f"{base}.{a.name}".lstrip(".") if f"{base}.{a.name}".lstrip(".") in modules else base
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name[len("beexnp"):].lstrip(".") for a in node.names if a.name.startswith("beexnp")]
        found.update(n or "__init__" for n in names)
    return found


def import_graph(root=None):
    """{module: sorted list of the package modules it imports}, for the package in ``root``."""
    root = Path(root or Path(__file__).resolve().parents[1] / "beexnp")
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {name: sorted(imported_modules(ast.parse(path.read_text()), files) - {name})
            for name, path in files.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, trail + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in graph:
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print which beexnp module imports which.")
    parser.add_argument("--root", help="the package folder to read (default: this checkout's beexnp/)")
    args = parser.parse_args(argv)
    graph = import_graph(args.root)
    width = max(map(len, graph))
    for name, deps in graph.items():
        print(f"{name:<{width}}  -> {', '.join(deps) or '(nothing)'}")
    cycle = find_cycle(graph)
    print("\nno import cycle" if cycle is None else "\nimport cycle: " + " -> ".join(cycle))
    return 0 if cycle is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
