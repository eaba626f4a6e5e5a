"""No module of the service imports itself back, directly or through others.

grimp builds the import graph of the four packages (every import, also those inside functions
and under TYPE_CHECKING); a strongly connected component of more than one module is a cycle.
"""

from __future__ import annotations

import grimp

PACKAGES = ("config", "sessions_app", "simulator_app", "market_app")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
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
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def import_graph() -> dict[str, set[str]]:
    # No cache: a stale one could hide a cycle that was just written.
    built = grimp.build_graph(
        *PACKAGES, include_external_packages=False, exclude_type_checking_imports=False, cache_dir=None
    )
    return {module: set(built.find_modules_directly_imported_by(module)) for module in built.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [component for component in strongly_connected(graph) if len(component) > 1] + [
        [module] for module, imported in graph.items() if module in imported
    ]


def test_the_finder_sees_a_cycle_through_three_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert cycles(graph) == [["a", "b", "c"]]


def test_the_finder_passes_a_graph_without_cycles() -> None:
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_module_of_the_service_is_part_of_an_import_cycle() -> None:
    found = cycles(import_graph())

    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(component) for component in found)
