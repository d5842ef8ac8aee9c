"""The schema against the last released one (issue 16): graphql-inspector (npm
@graphql-inspector/cli) diffs schema.released.graphql with the schema the code serves, and a
breaking change fails unless schema.breaking.txt says it is meant."""
from __future__ import annotations

import pathlib

from livecart.schema import build_schema
from tests.node_tools import JS, node, run_node  # noqa: F401 - the fixture

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASED = ROOT / "schema.released.graphql"


async def inspect(node: str, new: pathlib.Path, accepted: pathlib.Path | None = None) -> tuple[int, str]:
    code, out, err = await run_node(
        node, "node_modules/@graphql-inspector/cli/cjs/index.js", "diff", str(RELEASED), str(new),
        "--rule", str(JS / "accepted-breaking.cjs"),
        env={"SCHEMA_BREAKING_ACCEPTED": str(accepted)} if accepted is not None else None,
    )
    return code, out + err


async def test_the_served_schema_breaks_nothing_released(node, tmp_path):
    served = tmp_path / "schema.graphql"
    served.write_text(build_schema().as_str() + "\n")  # what `livecart export-schema` writes
    code, output = await inspect(node, served)
    assert code == 0, output
    assert "No breaking changes detected" in output or "No changes detected" in output


async def test_a_breaking_change_fails_unless_the_change_says_so(node, tmp_path):
    broken = tmp_path / "schema.graphql"
    broken.write_text(RELEASED.read_text().replace("  logout: Boolean!\n", "  signOut: Boolean!\n"))
    code, output = await inspect(node, broken)
    assert code == 1 and "logout" in output and "breaking" in output
    accepted = tmp_path / "accepted.txt"
    accepted.write_text("# meant\nField 'logout' was removed from object type 'Mutation' # renamed: signOut\n")
    code, output = await inspect(node, broken, accepted)
    assert code == 0, output
