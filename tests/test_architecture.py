"""The package's layout is its architecture (docs/architecture.md): one sub-package per layer,
and imports only run downward. Read from the source with `ast`, so a lazy import inside a
function counts as much as one at the top."""

import ast
from pathlib import Path

import arbeidsindikator as ai

PKG = Path(ai.__file__).parent
# lower number = lower layer; a module may import its own layer and the ones below
LAYER = {"norsk": 0, "data": 1, "pipeline": 2, "analyses": 3, "present": 4, "api": 5, "cli": 6, "__init__": 6}
ROOT_FILES = {"__init__.py", "api.py", "cli.py", "norsk.py"}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1] if len(parts) > 1 else "__init__"]


def _imports(path: Path):
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1]
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            for n in names:
                if n.startswith("arbeidsindikator"):
                    yield module, n, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("arbeidsindikator"):
                    yield module, a.name, node.lineno


def _all_modules():
    return sorted(PKG.rglob("*.py"))


def test_the_root_holds_only_the_face_and_the_layers():
    files = {p.name for p in PKG.iterdir() if p.is_file() and p.suffix == ".py"}
    dirs = {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert files == ROOT_FILES
    assert dirs == {"data", "pipeline", "analyses", "present"}


def test_imports_run_only_downward():
    upward = []
    for path in _all_modules():
        for module, target, line in _imports(path):
            if target == "arbeidsindikator" or target.split(".")[1] not in LAYER:
                continue  # the package face itself (`from . import __version__`)
            if module.endswith("__init__") or module == "arbeidsindikator":
                continue
            if _layer(target) > _layer(module):
                upward.append(f"{path.relative_to(PKG.parent)}:{line} imports {target}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_layer_imports_the_facade():
    """api.py and cli.py are for users; nothing inside the layers reaches for them."""
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {t}" for p in _all_modules()
           for m, t, line in _imports(p)
           if t.split(".")[1:2] and t.split(".")[1] in ("api", "cli") and _layer(m) < LAYER["api"]]
    assert not bad, bad


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule is not vacuous: a lazy upward import inside a function is found."""
    bad = PKG / "data" / "_upward_probe.py"
    bad.write_text("def f():\n    from ..present import charts\n")
    try:
        found = [t for m, t, _ in _imports(bad)]
        assert found == ["arbeidsindikator.present"]
        assert _layer(found[0]) > _layer("arbeidsindikator.data._upward_probe")
    finally:
        bad.unlink()


def test_the_public_names_are_where_the_readme_uses_them():
    for name in ("run_indicator", "Results", "fit_model", "connect_data", "load_spec", "parse_spec", "generate_world",
                 "RunResult"):
        assert hasattr(ai, name), name


def test_every_import_inside_the_package_resolves():
    """A lazy import inside a function is only run when that path is taken: check them all here."""
    import importlib
    import importlib.util
    missing = []
    for p in _all_modules():
        for _, target, line in _imports(p):
            if importlib.util.find_spec(target) is None:
                parent, _, name = target.rpartition(".")
                if not hasattr(importlib.import_module(parent), name):
                    missing.append(f"{p.relative_to(PKG.parent)}:{line} {target}")
    assert not missing, missing
