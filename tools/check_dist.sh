#!/usr/bin/env bash
# make dist-check: build the wheel and the sdist (offline: --no-isolation, the pinned setuptools),
# check what each holds, install the wheel into a clean virtual environment with the lowest supported
# versions (requirements-lowest.txt, which pyproject's lower bounds equal), and from outside the source
# tree run the command and a quick tier of the tests against the installed package.
#   tools/check_dist.sh [PYTHON]   PYTHON: the set-up's interpreter (default .venv/bin/python),
#                                  which needs setuptools and build (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-.venv/bin/python}
SECONDS=0
say() { printf 'dist-check [%3ds]: %s\n' "$SECONDS" "$*"; }
fail() { printf 'dist-check: FAILED: %s\n' "$*" >&2; exit 1; }

# The quick tier run against the installed wheel: the API, the CLI, data files (numpy), models,
# training, checkpoints, figures (matplotlib) and replays (pillow), and the package's own metadata.
QUICK_TESTS=(test_packaging.py test_api.py test_cli.py test_cli_startup.py test_data.py test_datafiles.py
             test_validation.py test_loader.py test_variable_length.py test_models.py test_stepbystep.py
             test_training.py test_checkpoint.py test_plots.py test_replay.py)

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/squareseq-dist-check.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

say "building the sdist and the wheel into dist/ (python -m build --no-isolation)"
rm -rf dist
"$PY" -m build --no-isolation --outdir dist . > "$SCRATCH/build.log" 2>&1 || { cat "$SCRATCH/build.log"; fail "build"; }
if grep -E -i "deprecat|SetuptoolsWarning" "$SCRATCH/build.log"; then fail "the build warns (above)"; fi
shopt -s nullglob
wheels=(dist/squareseq-*-py3-none-any.whl); sdists=(dist/squareseq-*.tar.gz)
[ ${#wheels[@]} -eq 1 ] && [ ${#sdists[@]} -eq 1 ] || fail "expected one wheel and one sdist in dist/"
WHEEL=$ROOT/${wheels[0]}; SDIST=$ROOT/${sdists[0]}
VERSION=$("$PY" -c 'import ast, sys; t = ast.parse(open("src/squareseq/__init__.py").read())
print(next(n.value.value for n in t.body if isinstance(n, ast.Assign) and n.targets[0].id == "__version__"))')
case "$WHEEL" in *"squareseq-$VERSION-"*) ;; *) fail "the wheel's version is not squareseq.__version__ $VERSION: $WHEEL";; esac

say "checking what the sdist holds"
tar -tzf "$SDIST" > "$SCRATCH/sdist.txt"
for f in LICENSE README.md CHANGELOG.md PKG-INFO pyproject.toml requirements-lowest.txt src/squareseq/py.typed \
         src/squareseq/__main__.py tests/conftest.py tests/test_packaging.py; do
    grep -qx "squareseq-$VERSION/$f" "$SCRATCH/sdist.txt" || fail "the sdist lacks $f"
done
if grep -E '__pycache__|\.pyc$|^squareseq-[^/]*/(runs|dist|build|\.venv)/' "$SCRATCH/sdist.txt"; then
    fail "the sdist holds caches or run folders (above)"
fi

say "creating a clean virtual environment and installing the wheel with requirements-lowest.txt"
"$PY" -m venv "$SCRATCH/venv"
VPY=$SCRATCH/venv/bin/python
# the test tools at the set-up's pins; the package's requirements at their lowest; --no-compile: byte-compiling
# all of torch would take longer than the install (only what runs gets compiled)
grep -E '^(pytest|hypothesis)==' requirements-dev.txt > "$SCRATCH/test-tools.txt"
"$VPY" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
    -r requirements-lowest.txt -r "$SCRATCH/test-tools.txt" "$WHEEL" > "$SCRATCH/pip.log" 2>&1 \
    || { grep -v "is ignored" "$SCRATCH/pip.log"; fail "installing the wheel with the lowest versions"; }
"$VPY" -m pip check --disable-pip-version-check > /dev/null || fail "pip check"
while IFS= read -r line; do  # each lowest pin is what got installed (pip did not upgrade it)
    name=${line%%==*}; want=${line#*==}
    got=$("$VPY" -c "import importlib.metadata as m; print(m.version('$name'))")
    case "$got" in "$want"|"$want+"*) ;; *) fail "$name is $got, requirements-lowest.txt says $want";; esac
done < <(grep -E '^[A-Za-z0-9_.-]+==' requirements-lowest.txt)

# everything below runs from the scratch folder: the package comes from the wheel, not src/
cd "$SCRATCH"
"$VPY" - "$ROOT" <<'PY' || fail "squareseq is not the installed wheel"
import importlib.metadata, pathlib, sys
import squareseq
where = pathlib.Path(squareseq.__file__).resolve()
assert pathlib.Path(sys.argv[1]).resolve() not in where.parents, where
assert "site-packages" in where.parts, where
assert importlib.metadata.version("squareseq") == squareseq.__version__
assert (where.parent / "py.typed").is_file()
PY
out=$("$SCRATCH/venv/bin/squareseq" --version)
[ "$out" = "squareseq $VERSION" ] || fail "squareseq --version printed '$out'"
"$VPY" -m squareseq --help > /dev/null || fail "python -m squareseq --help"
"$VPY" -m squareseq train --help > /dev/null || fail "python -m squareseq train --help"
say "installed: $("$VPY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("squareseq", "torch", "numpy", "matplotlib", "tqdm", "pillow")))')"

say "squareseq train --no-figures --epochs 3 from the installed wheel"
"$SCRATCH/venv/bin/squareseq" train --no-figures --epochs 3 --out "$SCRATCH/run" --quiet > "$SCRATCH/train.log" 2>&1 \
    || { cat "$SCRATCH/train.log"; fail "squareseq train"; }
for f in metrics.json history.csv checkpoint.pt; do [ -f "$SCRATCH/run/$f" ] || fail "the run folder lacks $f"; done
"$SCRATCH/venv/bin/squareseq" evaluate "$SCRATCH/run" > /dev/null || fail "squareseq evaluate"

say "the quick tier of the tests against the installed wheel: ${QUICK_TESTS[*]}"
mkdir "$SCRATCH/t"
cp -r "$ROOT/tests" "$SCRATCH/t/tests"
# pytest's configuration (markers, strictness) and the files test_packaging reads beside the wheel
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$ROOT/LICENSE" "$ROOT/requirements-lowest.txt" \
   "$ROOT/requirements-dev.txt" "$SCRATCH/t/"
cd "$SCRATCH/t"
SQUARESEQ_DIST="$ROOT/dist" "$VPY" -m pytest -q -p no:cacheprovider -m "not slow" \
    "${QUICK_TESTS[@]/#/tests/}" || fail "the quick tier against the installed wheel"
say "passed: $(basename "$WHEEL") and $(basename "$SDIST") in dist/"
