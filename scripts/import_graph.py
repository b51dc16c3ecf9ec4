"""The import graph of our apps (grimp, which import-linter installs): imports against the floor
order of ARCHITECTURE.md, and import cycles between modules and between an app's second-level
packages. Every import counts (lazy and TYPE_CHECKING ones too). Run from the repository root:

    .venv/bin/python scripts/import_graph.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

APPS = ["core", "tenants", "accounts", "metering", "billing", "invoicing", "payments", "portal", "adminpanel", "config"]
FLOOR = {app: i for i, app in enumerate(APPS)} | {"adminpanel": APPS.index("portal")}  # portal, adminpanel: one floor


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    app = lambda m: m.split(".")[0]  # noqa: E731
    upward = [
        (m, imported)
        for m, imports in sorted(edges.items())
        for imported in sorted(imports)
        if app(m) != app(imported) and FLOOR[app(imported)] >= FLOOR[app(m)]
    ]
    second = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    package_edges: dict[str, set[str]] = {second(m): set() for m in edges}
    for m, imports in edges.items():
        package_edges[second(m)] |= {second(i) for i in imports if second(i) != second(m)}
    module_cycles, package_cycles = cycles(edges), cycles(package_edges)
    print(f"modules: {len(edges)}, imports between them: {sum(len(i) for i in edges.values())}")
    print(f"imports against the floor order: {len(upward)}")
    for m, imported in upward:
        print(f"  {m} -> {imported}")
    print(f"module-level import cycles: {len(module_cycles)}")
    for component in module_cycles:
        print(f"  {' <-> '.join(component)}")
    print(f"cycles between an app's second-level modules/packages: {len(package_cycles)}")
    for component in package_cycles:
        print(f"  {' <-> '.join(component)}")
    return 1 if upward or module_cycles else 0


if __name__ == "__main__":
    sys.exit(main())
