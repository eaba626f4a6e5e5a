"""The service uses daphne, Twisted, autobahn, asgiref, Channels and channels-redis through their
public APIs only, so an operator can install any release their ranges allow. Read statically from
every module of the service (config and the three apps):

- no private name (`_name`) imported from those libraries, and none of their modules imported by a
  private path;
- no assignment to an attribute of anything imported from them (a patch of a module or class);
- no private attribute read anywhere unless the service itself defines that name (a private part
  of a library object, reached through a value the types cannot follow: `reactor._loop`);
- no reading of source text (`inspect.getsource` and friends): behaviour decided by a library's
  source is behaviour that changes when the source is reformatted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ("config", "sessions_app", "simulator_app", "market_app")
LIBRARIES = ("daphne", "twisted", "autobahn", "asgiref", "channels", "channels_redis", "redis")
# Underscored names other libraries document as public.
DOCUMENTED = {
    "_meta",  # Django: the Model._meta API (docs/ref/models/meta)
    "_request",  # Django REST framework: the underlying HttpRequest (api-guide/requests)
}
SOURCE_READERS = {"getsource", "getsourcelines", "getsourcefile", "getfile", "findsource", "getblock"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def service_modules() -> Iterator[Path]:
    for package in SERVICE:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def from_library(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in LIBRARIES


def own_private_names(trees: list[ast.Module]) -> set[str]:
    """Every private name the service defines: functions, classes, attributes it assigns, parameters."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {name for name in names if is_private(name)}


def library_names(tree: ast.Module) -> set[str]:
    """The names a module binds to something imported from the libraries."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if from_library(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and from_library(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def findings_in(path: Path, tree: ast.Module, own: set[str]) -> Iterator[Finding]:
    relative = str(path.relative_to(ROOT))
    imported = library_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and from_library(node.module):
            assert node.module is not None
            if any(is_private(part) for part in node.module.split(".")):
                yield Finding(relative, node.lineno, f"imports the private module {node.module}")
            for alias in node.names:
                if is_private(alias.name):
                    yield Finding(relative, node.lineno, f"imports the private name {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if from_library(alias.name) and any(is_private(part) for part in alias.name.split(".")):
                    yield Finding(relative, node.lineno, f"imports the private module {alias.name}")
        elif isinstance(node, ast.Attribute):
            if isinstance(node.ctx, ast.Store | ast.Del) and root_name(node.value) in imported:
                yield Finding(relative, node.lineno, f"assigns to {ast.unparse(node)}, a library's attribute")
            elif is_private(node.attr) and node.attr not in own and node.attr not in DOCUMENTED:
                yield Finding(relative, node.lineno, f"reads {ast.unparse(node)}, a private part of a library")
        elif isinstance(node, ast.Call):
            called = node.func
            name = (
                called.attr if isinstance(called, ast.Attribute) else called.id if isinstance(called, ast.Name) else ""
            )
            if name in SOURCE_READERS:
                yield Finding(relative, node.lineno, f"reads source text with {name}()")
            if name == "setattr" and node.args and root_name(node.args[0]) in imported:
                yield Finding(relative, node.lineno, f"sets an attribute of {ast.unparse(node.args[0])}")


def library_boundary_findings(paths: list[Path]) -> list[Finding]:
    trees = [ast.parse(path.read_text(), filename=str(path)) for path in paths]
    own = own_private_names(trees)
    return [finding for path, tree in zip(paths, trees, strict=True) for finding in findings_in(path, tree, own)]


def test_no_module_of_the_service_reaches_into_a_librarys_private_parts() -> None:
    found = library_boundary_findings(list(service_modules()))

    assert found == [], (
        "private parts of daphne, Twisted, autobahn, asgiref, channels or channels-redis:\n"
        + "\n".join(map(str, found))
    )


def test_the_check_sees_each_kind_of_reach(tmp_path: Path) -> None:
    module = ROOT / "sessions_app" / "realtime" / "_boundary_example.py"  # a path inside the service
    source = """
import inspect
from twisted.internet import tcp
from channels_redis.core import RedisChannelLayer
from channels.layers import _private_helper
import daphne._internal

tcp.Connection.write = lambda self, data: None
setattr(RedisChannelLayer, "receive", None)
loop = reactor._asyncioEventloop
text = inspect.getsource(RedisChannelLayer.group_add)
own = self._mine
self._mine = 1
"""
    tree = ast.parse(source)
    own = own_private_names([tree])
    found = [finding.what for finding in findings_in(module, tree, own)]

    assert found == [
        "imports the private name channels.layers._private_helper",
        "imports the private module daphne._internal",
        "assigns to tcp.Connection.write, a library's attribute",
        "sets an attribute of RedisChannelLayer",
        "reads reactor._asyncioEventloop, a private part of a library",
        "reads source text with getsource()",
    ]
