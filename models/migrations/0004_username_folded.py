"""Usernames unique under Unicode case folding and NFKC (issue 13): `Alice` and `ALICE` could
register while `alice` existed.

Adds users.username_folded (unique), fills it, and first renames every account whose folded
name clashes with an older one: the oldest (lowest id) keeps its name, each later one becomes
`<name>-<id>` (cut to fit 32 characters), and each rename is logged at WARNING with both names
so an operator can tell the owners. Nothing else about the accounts changes (passwords,
tokens, orders stay theirs).
"""
import logging
import unicodedata

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

log = logging.getLogger("livecart.migrations")


def fold(username: str) -> str:
    """The same as models.user.fold_username, kept here so this migration never changes."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def _renamed(username: str, user_id: int, taken: set[str]) -> str:
    suffix = f"-{user_id}"
    candidate = username[: 32 - len(suffix)] + suffix
    n = 1
    while fold(candidate) in taken:  # a user may already be called that
        extra = f"-{user_id}-{n}"
        candidate = username[: 32 - len(extra)] + extra
        n += 1
    return candidate


async def fold_usernames(apps, schema_editor) -> None:
    client = schema_editor.client
    mark = (lambda n: "?") if client.capabilities.dialect == "sqlite" else (lambda n: f"${n}")
    rows = await client.execute_query_dict("SELECT id, username FROM users ORDER BY id")
    taken: set[str] = set()
    renames = 0
    for row in rows:
        username, folded = row["username"], fold(row["username"])
        if folded in taken:
            new = _renamed(username, row["id"], taken | {fold(r["username"]) for r in rows})
            log.warning(
                "migration 0004: user %d %r clashes with an older account under case folding; renamed to %r",
                row["id"], username, new,
            )
            username, folded = new, fold(new)
            renames += 1
        taken.add(folded)
        await client.execute_query(
            f"UPDATE users SET username = {mark(1)}, username_folded = {mark(2)} WHERE id = {mark(3)}",
            [username, folded, row["id"]],
        )
    log.info("migration 0004: folded %d usernames, renamed %d look-alike account(s)", len(rows), renames)


class Migration(migrations.Migration):
    dependencies = [('models', '0003_restore_indexes_on_sqlite')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='username_folded',
            field=fields.CharField(null=True, unique=True, max_length=128),
        ),
        ops.RunPython(fold_usernames),
    ]
