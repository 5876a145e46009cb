"""The package as a package index shows it and pip installs it: the wheel's metadata (one version,
the license file, the extras, the lower bounds CI tests), py.typed, the sdist's files, the commands,
and README links that work both in the repository and on a package index.

The wheel and sdist are the ones in $SQUARESEQ_DIST when set (``make dist-check`` runs these tests
against the wheel it installed), else built here from the source tree (``python -m build``).
"""
import email
import email.message
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

import squareseq

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://github.com/squareseq/squareseq"
EXTRAS = {"sklearn", "aeon", "tensorboard", "onnx", "docs", "notebooks", "playground"}
CORE = ("torch", "numpy", "matplotlib", "tqdm", "pillow")

_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_HTML = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def link_targets(markdown: str) -> List[str]:
    """Every link and image target in a Markdown text (inline, reference definitions, HTML tags),
    code spans and fenced blocks left out (a path in code is text, not a link)."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for pattern in (_INLINE, _REFERENCE, _HTML) for m in pattern.finditer(text)]


def is_absolute(target: str) -> bool:
    """A target that works wherever the text is shown: an http(s) URL, a mail address or an anchor."""
    return target.startswith(("https://", "http://", "mailto:", "#"))


def test_link_targets_finds_each_kind_of_link_and_skips_code():
    text = ('See [a](docs/a.md), ![img](fig.png "t"), [b][ref] and <a href="x/y.md">y</a>.\n'
            "[ref]: https://example.org/b\n"
            "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n")
    assert link_targets(text) == ["docs/a.md", "fig.png", "https://example.org/b", "x/y.md"]
    assert [is_absolute(t) for t in ("docs/a.md", "#usage", "https://x", "mailto:a@b")] == [False, True, True, True]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A folder with the wheel and the sdist: $SQUARESEQ_DIST's, or built from the source tree."""
    given = os.environ.get("SQUARESEQ_DIST")
    if given:
        return Path(given)
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


@pytest.fixture(scope="module")
def wheel(dist) -> zipfile.ZipFile:
    with zipfile.ZipFile(_one(dist, "squareseq-*-py3-none-any.whl")) as archive:
        yield archive


@pytest.fixture(scope="module")
def metadata(wheel) -> email.message.Message:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


def _requirements(metadata: email.message.Message) -> Dict[str, str]:
    """The core requirements (no extra marker): name -> specifier."""
    out = {}
    for line in metadata.get_all("Requires-Dist") or []:
        if ";" not in line:
            name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line).groups()
            out[name.lower()] = spec.replace(" ", "")
    return out


def _release(version: str) -> tuple:
    """'2.13' and '2.13.0+cpu' -> (2, 13, 0): the release numbers, padded to three."""
    parts = [int(p) for p in re.match(r"\d+(?:\.\d+)*", version).group(0).split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def test_the_wheel_carries_the_one_version(metadata, wheel):
    import importlib.metadata

    assert metadata["Version"] == squareseq.__version__
    assert any(n.startswith(f"squareseq-{squareseq.__version__}.dist-info/") for n in wheel.namelist())
    assert importlib.metadata.version("squareseq") == squareseq.__version__


def test_the_wheel_ships_the_license_file_and_py_typed(metadata, wheel):
    names = wheel.namelist()
    assert "squareseq/py.typed" in names
    license_name = f"squareseq-{squareseq.__version__}.dist-info/licenses/LICENSE"
    assert license_name in names
    text = wheel.read(license_name).decode()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the squareseq authors" in text
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_the_wheel_declares_the_extras_and_all_is_their_union(metadata):
    extras = set(metadata.get_all("Provides-Extra"))
    assert EXTRAS | {"all"} <= extras
    union = [line for line in metadata.get_all("Requires-Dist") if line.endswith('extra == "all"')]
    assert len(union) == 1
    named = re.match(r"squareseq\[([^\]]+)\]", union[0]).group(1)
    assert set(named.split(",")) == EXTRAS
    onnx = [line.split(";")[0] for line in metadata.get_all("Requires-Dist") if line.endswith('extra == "onnx"')]
    assert {re.match(r"[a-z]+", r).group(0) for r in onnx} == {"onnx", "onnxruntime", "onnxscript"}


def test_lower_bounds_are_the_lowest_versions_ci_installs(metadata):
    """pyproject's lower bounds equal requirements-lowest.txt (make dist-check installs those), and
    the Python that runs this is one the classifiers and Requires-Python name."""
    pins = dict(line.split("==") for line in (ROOT / "requirements-lowest.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    required = _requirements(metadata)
    assert set(CORE) <= set(required) and set(pins) == set(CORE)
    for name in CORE:
        bound = re.fullmatch(r">=([0-9.]+)", required[name])
        assert bound, (name, required[name])
        assert _release(bound.group(1)) == _release(pins[name]), (name, required[name], pins[name])
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Programming Language :: Python :: {python}" in metadata.get_all("Classifier")
    assert metadata["Requires-Python"] == ">=3.11"


def test_the_pinned_set_up_satisfies_every_declared_requirement(metadata):
    """make test runs on requirements-dev.txt's pins: each requirement the wheel declares, core or
    extra, admits the pinned version, so the extras CI tests are inside their declared ranges."""
    requirements = pytest.importorskip("packaging.requirements")
    pins = {name.lower(): version for name, version in
            (line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
             if "==" in line and not line.startswith("#"))}
    checked = set()
    for line in metadata.get_all("Requires-Dist"):
        requirement = requirements.Requirement(line)
        if requirement.name == "squareseq" or requirement.name.lower() not in pins:
            continue
        assert requirement.specifier.contains(pins[requirement.name.lower()], prereleases=True), line
        checked.add(requirement.name.lower())
    assert {"torch", "numpy", "scikit-learn", "aeon", "tensorboard", "onnxscript", "mkdocs", "nbclient"} <= checked


def test_the_wheel_installs_the_command(wheel):
    name = f"squareseq-{squareseq.__version__}.dist-info/entry_points.txt"
    assert "squareseq = squareseq.cli:run" in wheel.read(name).decode()


def test_the_sdist_holds_license_readme_changelog_py_typed_and_tests(dist):
    prefix = f"squareseq-{squareseq.__version__}/"
    with tarfile.open(_one(dist, "squareseq-*.tar.gz")) as archive:
        names = set(archive.getnames())
    for path in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "requirements-lowest.txt",
                 "src/squareseq/py.typed", "tests/conftest.py", "tests/test_packaging.py"):
        assert prefix + path in names, path
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_python_m_squareseq_is_the_command():
    done = subprocess.run([sys.executable, "-m", "squareseq", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"squareseq {squareseq.__version__}")
    done = subprocess.run([sys.executable, "-m", "squareseq", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "train" in done.stdout


def test_the_changelog_has_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{squareseq.__version__}] - " in text and "## [Unreleased]" in text


@pytest.mark.skipif(not (ROOT / "src" / "squareseq").is_dir(), reason="needs the repository's files (not a copy "
                    "of tests/ beside an installed wheel)")
def test_readme_links_resolve_in_the_repository():
    """A relative link names a file in the repository; an absolute link into the repository's
    main branch names one too (so the absolute form stays true as files move)."""
    for target in link_targets((ROOT / "README.md").read_text()):
        if target.startswith(f"{REPO_URL}/blob/main/") or target.startswith(f"{REPO_URL}/tree/main/"):
            path = target.split("/main/", 1)[1]
        elif is_absolute(target):
            continue
        else:
            path = target
        assert (ROOT / path.split("#")[0]).exists(), target


def test_the_long_description_uses_only_absolute_links(metadata):
    """A package index shows the README without the repository around it: relative links break."""
    relative = [t for t in link_targets(metadata.get_payload()) if not is_absolute(t)]
    assert relative == []
