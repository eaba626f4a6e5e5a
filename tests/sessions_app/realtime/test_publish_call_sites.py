"""One publish path: `push` and `notify` are called from services only, and nothing else sends on
the channel layer. The list below names every call site; a new one is added here on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("config", "sessions_app", "simulator_app", "market_app")
KERNEL_PUBLISHER = "sessions_app/realtime/publish.py"
# The readiness probe sends one message to its own channel to see the layer answer; it publishes nothing.
LAYER_PROBE = ("config/health.py", "_channel_layer")

CALL_SITES = {
    ("sessions_app/services.py", "device_invalidate", "push"),
    ("sessions_app/services.py", "_sessions_attach_once", "notify"),
    ("sessions_app/services.py", "_session_end", "notify"),
    ("sessions_app/services.py", "connection_replace_announce", "notify"),
    ("sessions_app/services.py", "connection_close_by_operator", "notify"),
    ("sessions_app/services.py", "token_revoke", "notify"),
    ("simulator_app/services.py", "_publish_status", "push"),
    ("simulator_app/services.py", "_request_assignment", "notify"),
    ("simulator_app/services.py", "_request_stop", "notify"),
    ("market_app/services.py", "_account_changed", "push"),
    ("market_app/services.py", "_orders_changed", "notify"),
    ("market_app/services.py", "feed_advance", "notify"),
}


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


def test_push_and_notify_are_called_from_the_listed_services_only() -> None:
    seen = {
        (str(path.relative_to(ROOT)), function, name)
        for path in sources()
        if str(path.relative_to(ROOT)) != KERNEL_PUBLISHER
        for function, name in calls(path, {"push", "notify"})
    }

    assert seen == CALL_SITES
    assert all(path.endswith("/services.py") for path, _, _ in seen)


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


def test_only_the_kernel_publisher_sends_on_the_channel_layer() -> None:
    kernel_layer = {KERNEL_PUBLISHER, "sessions_app/realtime/memory_layer.py"}
    senders = {
        (str(path.relative_to(ROOT)), function)
        for path in sources()
        if str(path.relative_to(ROOT)) not in kernel_layer
        for function in layer_sends(path)
    }
    helpers = {
        (str(path.relative_to(ROOT)), function, name)
        for path in sources()
        if str(path.relative_to(ROOT)) != KERNEL_PUBLISHER
        for function, name in calls(path, {"group_send_now", "push_now", "_send_now"})
    }

    assert senders == {LAYER_PROBE}
    assert helpers == set()


def test_the_finders_see_calls_inside_nested_functions() -> None:
    source = ROOT / "sessions_app" / "realtime" / "publish.py"

    assert ("send", "push_now") in calls(source, {"push_now"})
    assert "group_send_now" in layer_sends(source)
