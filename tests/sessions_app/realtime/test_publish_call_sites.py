"""One publish path: `push` and `notify` are called from the apps' services modules only, and
nothing else sends on the channel layer (the publisher and the embedded layer aside)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("config", "sessions_app", "simulator_app", "market_app")
PUBLISHER = "sessions_app/realtime/publish.py"
LAYERS = {PUBLISHER, "sessions_app/realtime/memory_layer.py"}
# The watchdog sends probes to its own channel to see the layer answer; it publishes nothing.
LAYER_PROBE = "sessions_app/realtime/watchdog.py"


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def calls(path: Path, names: set[str]) -> list[tuple[str, str]]:
    """(enclosing function, called name) for each call of a name (or attribute) in `names`."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call):
                target = child.func
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
                if name in names:
                    found.append((inner, name))
            visit(child, inner)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_push_and_notify_are_called_from_services_modules_only() -> None:
    callers = {
        str(path.relative_to(ROOT))
        for path in sources()
        if str(path.relative_to(ROOT)) != PUBLISHER and calls(path, {"push", "notify", "notify_now"})
    }

    assert callers, "no caller found: the finder is broken"
    assert {path for path in callers if not path.endswith("/services.py")} == set()


def layer_sends(path: Path) -> list[str]:
    """Functions calling `send` or `group_send` on something named like a channel layer."""
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                receiver = child.func.value
                receiver_name = receiver.id if isinstance(receiver, ast.Name) else getattr(receiver, "attr", "")
                if child.func.attr in {"send", "group_send"} and "layer" in receiver_name:
                    found.append(inner)
            visit(child, inner)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_only_the_publisher_sends_on_the_channel_layer() -> None:
    senders = {
        str(path.relative_to(ROOT))
        for path in sources()
        if str(path.relative_to(ROOT)) not in LAYERS and layer_sends(path)
    }

    assert senders <= {LAYER_PROBE}


def test_the_finders_see_calls_inside_nested_functions(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "async def outer(layer, publisher):\n"
        "    async def inner():\n"
        "        await layer.group_send('g', {})\n"
        "        publisher.push(1)\n"
        "    await inner()\n"
    )

    assert calls(source, {"push"}) == [("inner", "push")]
    assert layer_sends(source) == ["inner"]
