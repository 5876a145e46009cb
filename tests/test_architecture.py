"""The package's shape: layers that import only downwards, one exception family, small modules,
a public API that loads lazily, and the old flat import paths still working."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "squareseq"

#: Each part of the package and its layer: a module may import its own layer and those below.
LAYERS = {
    "errors": 0, "options": 0, "config": 0, "sizes": 0,
    "data": 1,
    "models": 2,
    "training": 3,
    "figures": 4,
    "stepbystep": 5,
    "runs": 6,
    "cli": 7, "__main__": 7, "estimators": 7, "playground": 7,
}
MAX_LINES = 400


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts
        if parts == ("__init__",):
            continue
        yield path, parts


def _part(dotted: str) -> str:
    return dotted.split(".")[1] if dotted.count(".") >= 1 else ""


def _imports(path: Path, parts):
    """The squareseq modules ``path`` imports, anywhere in it (functions included)."""
    package = ["squareseq", *parts[:-1]] if parts[-1] != "__init__" else ["squareseq", *parts[:-1]]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("squareseq."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "squareseq":
                for alias in node.names:
                    yield f"squareseq.{alias.name}", node.lineno
            elif module.startswith("squareseq."):
                yield module, node.lineno


def test_every_module_belongs_to_a_layer():
    for path, parts in _modules():
        assert parts[0] in LAYERS, f"{path}: not in any layer; add it to a subpackage or LAYERS"


def test_imports_only_go_down_the_layers():
    """data -> models -> training -> figures -> stepbystep -> runs -> cli: nothing imports upward."""
    upward = []
    for path, parts in _modules():
        own = LAYERS[parts[0]]
        for module, line in _imports(path, parts):
            target = _part(module)
            if target in LAYERS and LAYERS[target] > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not upward, "imports going up the layers:\n" + "\n".join(upward)


def test_each_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in sorted(SRC.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 20 and "import" in doc, f"{init}: open with what lives here and what it may import"


def test_no_module_runs_past_400_lines():
    long = {str(p.relative_to(SRC)): n for p, _ in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules past {MAX_LINES} lines: {long}"


def test_bad_input_raises_the_one_exception_family():
    """No plain ValueError/TypeError for bad input: every raise uses squareseq.errors' family
    (SquareseqError and its subclasses, which are ValueErrors)."""
    plain = []
    for path, _ in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in ("ValueError", "TypeError"):
                    plain.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not plain, "plain ValueError/TypeError raised at:\n" + "\n".join(plain)
