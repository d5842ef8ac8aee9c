import pathlib
import subprocess
import sys

from schema import build_schema

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_exported_sdl_matches_the_code():
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == build_schema().as_str() + "\n", "schema.graphql drifted: run `livecart export-schema`"


def test_contract_holds_for_what_is_built():
    checker = ROOT.parent / "shared" / "tools" / "contract_check.py"
    result = subprocess.run([sys.executable, str(checker), "--sdl", str(ROOT / "schema.graphql")], capture_output=True, text=True)
    # Only types and fields that later issues build may still be missing; nothing may be changed.
    for line in result.stdout.splitlines()[:-1]:
        assert line.startswith(("TYPE_REMOVED", "FIELD_REMOVED")), line
