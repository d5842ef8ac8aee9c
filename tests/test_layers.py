"""The layers point one way (README, Architecture): import-linter's contracts in pyproject.toml hold,
a deliberately added upward import breaks them, and no module is ever imported by its bare name."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("server", "schema", "resolvers", "subscriptions", "models", "client")


def lint_imports(tree: pathlib.Path, config: pathlib.Path) -> subprocess.CompletedProcess:
    """Runs lint-imports over the `livecart` packages found in `tree` only: without site's .pth
    files (-S), so the editable install's finder cannot hand out the checkout's own modules."""
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[3], no_cache=True, no_logo=True))"
    )
    site_packages = sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [sys.executable, "-S", "-c", script, str(tree), site_packages, str(config)],
        cwd=tree, capture_output=True, text=True, timeout=120,
    )


def copy_of_the_packages(into: pathlib.Path) -> pathlib.Path:
    """The packages' Python files under into/livecart/ (a namespace, as installed), and the config."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / "livecart" / package, ignore=shutil.ignore_patterns("static", "pages", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def test_the_import_contracts_hold(tmp_path):
    tree = copy_of_the_packages(tmp_path)
    run = lint_imports(tree, tree / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    """A model importing the server (the deliberate breach) fails the check, and the report names it."""
    tree = copy_of_the_packages(tmp_path)
    clock = tree / "livecart" / "models" / "clock.py"
    clock.write_text(clock.read_text() + "\nfrom livecart.server import app  # the breach\n")
    run = lint_imports(tree, tree / "pyproject.toml")
    assert run.returncode != 0
    assert "livecart.models is not allowed to import livecart.server" in run.stdout, run.stdout
    assert "livecart.models.clock -> livecart.server.app" in run.stdout, run.stdout


def test_the_resolvers_importing_aiohttp_breaks_the_contracts(tmp_path):
    tree = copy_of_the_packages(tmp_path)
    loaders = tree / "livecart" / "resolvers" / "loaders.py"
    loaders.write_text(loaders.read_text() + "\nfrom aiohttp import web  # the breach\n")
    run = lint_imports(tree, tree / "pyproject.toml")
    assert run.returncode != 0
    assert "livecart.resolvers.loaders -> aiohttp" in run.stdout, run.stdout


def test_no_module_is_imported_by_its_bare_name():
    """`import models` (or server, schema, ...) would load a second copy of the modules: Tortoise
    would see every model twice, and the app's keys and context variables would be doubled.
    Everything the app and its command line load comes from the `livecart` namespace only."""
    script = (
        "import sys\n"
        "import livecart.server.app, livecart.server.cli, livecart.server.simulate, livecart.client.livecart_client\n"
        f"bare = sorted(name for name in sys.modules if name.split('.')[0] in {PACKAGES!r})\n"
        "print(','.join(bare))\n"
    )
    # From the checkout's root, where a bare `import models` would succeed if anything tried it.
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"imported by bare name: {run.stdout.strip()}"


def test_the_suite_itself_imports_no_bare_module():
    """This process has imported (through conftest and the test modules collected with it) no bare
    `models`, `server`, ...: the same check as above, in the process running the tests."""
    bare = sorted(name for name in sys.modules if name.split(".")[0] in PACKAGES)
    assert bare == []
