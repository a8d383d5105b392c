"""Generate a plugin's own copy of the package's code at export time.

``vendor(folder, root)`` copies the module ``root`` (``brainscore.plugin`` for a model plugin,
``brainscore.rdm_benchmark`` for a benchmark plugin) and every ``neurocnnf`` module it imports
(module-level and inside functions, not under ``if TYPE_CHECKING:``, followed transitively)
into ``folder/<RUNTIME>/``, with ``neurocnnf`` imports rewritten as relative ones. A package
``__init__`` is copied only when it is imported itself (else an empty one is written), and from
a module in ``PARTIAL`` only the named definitions (with the imports they use) are taken; the
data files a module in ``DATA`` reads beside it are copied with it. The
result imports without ``neurocnnf``; ``requirements`` lists the published distributions it
needs.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import neurocnnf
from neurocnnf.errors import NeurocnnfError

RUNTIME = "cnnf_runtime"
ROOT_MODULE = "neurocnnf.brainscore.plugin"
# modules whose full import would pull in the data pipeline: only these definitions are taken
PARTIAL = {"neurocnnf.stimuli.sets": ("StimulusError", "StimulusSizeWarning", "_read_image",
                                      "_checked", "_grey_palette", "convert"),
           "neurocnnf.io": ("WriteError", "atomic_write", "_reason", "current_umask")}
# modules that read package data beside them: those files are copied with them
DATA = {"neurocnnf.models.commitments": ("commitments.json",)}
# third-party import -> published distribution; Brain-Score's own packages are there already
DISTRIBUTIONS = {"torch": "torch", "numpy": "numpy", "PIL": "Pillow",
                 "safetensors": "safetensors", "tqdm": "tqdm", "scipy": "scipy"}
PROVIDED = {"brainscore_vision", "brainscore_core"}
SOURCE = Path(neurocnnf.__file__).parent


class VendorError(NeurocnnfError, RuntimeError):
    """The inference code needs something an exported plugin cannot carry or install."""


def _file(module: str) -> Path | None:
    """The source file of a ``neurocnnf`` module (or package), None if there is none."""
    base = SOURCE.joinpath(*module.split(".")[1:])
    candidates = [base / "__init__.py"] if base == SOURCE else [base.with_suffix(".py"),
                                                                base / "__init__.py"]
    return next((c for c in candidates if c.exists()), None)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(neurocnnf modules, third-party top-level names) that ``tree`` imports when it runs;
    ``from package import module`` needs the module, not the package's ``__init__``."""
    ours, theirs = set(), set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            if any(n.split(".")[0] == "neurocnnf" for n in names):
                raise VendorError(f"write `from neurocnnf... import ...`, not `import {names}`")
            theirs.update(n.split(".")[0] for n in names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "neurocnnf":
                theirs.add(node.module.split(".")[0])
                continue
            modules = {f"{node.module}.{a.name}" for a in node.names
                       if _file(f"{node.module}.{a.name}") is not None}
            ours.update(modules)
            if len(modules) < len(node.names):
                ours.add(node.module)
    return ours, theirs


def _partial(module: str, names: tuple[str, ...]) -> str:
    """The named top-level definitions of ``module`` with the module constants and imports
    that they use."""
    source = _file(module).read_text()
    tree = ast.parse(source)
    chosen = "\n".join(ast.get_source_segment(source, node) for node in tree.body
                       if getattr(node, "name", None) in names)
    parts = [ast.get_source_segment(source, node) for node in tree.body
             if getattr(node, "name", None) in names
             or (isinstance(node, ast.Assign | ast.AnnAssign) and any(
                 isinstance(t, ast.Name) and re.search(rf"\b{re.escape(t.id)}\b", chosen)
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])))]
    body = "\n\n\n".join(parts)
    header = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound = [(a.asname or a.name).split(".")[0] for a in node.names]
            if getattr(node, "module", None) == "__future__" or any(
                    re.search(rf"\b{re.escape(b)}\b", body) for b in bound):
                header.append(ast.get_source_segment(source, node))
    return '"""{}"""\n\n{}\n\n\n{}\n'.format(
        f"{', '.join(names)} from {module}.", "\n".join(header), body)


def _relative(text: str, module: str, is_package: bool) -> str:
    """Rewrite ``from neurocnnf.x import y`` as a relative import inside the runtime copy."""
    package_depth = len(module.split(".")) - (1 if is_package else 2)

    def replace(match: re.Match) -> str:
        target = (match.group(2) or "").lstrip(".")
        return f"{match.group(1)}from {'.' * (package_depth + 1)}{target} import"

    return re.sub(r"(?m)^(\s*)from neurocnnf(\.[\w.]+)? import", replace, text)


def vendor(folder: str | Path, root: str = ROOT_MODULE) -> tuple[Path, list[str]]:
    """Write ``folder/RUNTIME/`` with ``root`` and what it imports; return it with the
    requirements (distribution names)."""
    from neurocnnf.version import __version__

    runtime = Path(folder) / RUNTIME
    todo, done, third_party = [root], set(), set()
    while todo:
        module = todo.pop()
        if module in done:
            continue
        done.add(module)
        path = _file(module)
        if path is None:
            raise VendorError(f"{module} is imported by the plugin code but has no source file")
        text = _partial(module, PARTIAL[module]) if module in PARTIAL else path.read_text()
        ours, theirs = _imports(ast.parse(text))
        third_party |= theirs
        todo += sorted(ours - done)
        is_package = path.name == "__init__.py"
        relative = Path(*module.split(".")[1:])
        target = runtime / relative / "__init__.py" if is_package else (
            runtime / relative).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        note = (f"# Generated by neurocnnf {__version__} from {path.relative_to(SOURCE.parent)} "
                "at plugin export; do not edit.\n")
        target.write_text(note + _relative(text, module, is_package))
        for name in DATA.get(module, ()):
            (target.parent / name).write_bytes((path.parent / name).read_bytes())
    for package in [runtime, *(p for p in runtime.rglob("*") if p.is_dir())]:
        if not (package / "__init__.py").exists():
            (package / "__init__.py").write_text(f'"""Generated by neurocnnf {__version__}."""\n')
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    unknown = sorted(third_party - stdlib - PROVIDED - set(DISTRIBUTIONS))
    if unknown:
        raise VendorError(f"the plugin code imports {unknown}, which the export does not know "
                          f"how to install; known: {sorted(DISTRIBUTIONS)}")
    return runtime, sorted(DISTRIBUTIONS[n] for n in third_party if n in DISTRIBUTIONS)
