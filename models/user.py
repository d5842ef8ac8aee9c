"""Accounts, their bearer tokens, and the operations on them."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models.atomic import atomic
from livecart.models.clock import utcnow
from livecart.models.errors import DomainError, ErrorCode, bad_input, conflict

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified when the username is unknown, so both failures take the same time.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$NRIPMx45i9gPEvOJt1kL2w$wnTV41/FytxeK6T/TjGYa2Yf3HcFrzp9jdPu5Vwbq/o"


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=32, unique=True)
    # The name as compared (fold_username): unique, so look-alikes (`Alice`, `ALICE`) cannot both
    # exist. Nullable only because migration 0004 added it to existing rows; every write sets it.
    username_folded = fields.CharField(max_length=128, null=True, unique=True)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"
        constraints = (CheckConstraint(check="length(username) >= 3", name="users_username_length"),)

    async def save(self, *args, **kwargs) -> None:
        # Whoever writes a user (register, the bench's seed, a test), the folded name follows.
        self.username_folded = fold_username(self.username)
        await super().save(*args, **kwargs)


class AuthToken(Model):
    """Only a SHA-256 of the token is kept, so a leaked table grants nothing."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="tokens", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_tokens"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fold_username(username: str) -> str:
    """NFKC, case folded, NFKC again (Unicode's NFKC_Casefold, without removing ignorables):
    how two usernames are compared, for uniqueness, logging in and login limits."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def _invalid_credentials() -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, "Wrong username or password.")


def _check_credentials_shape(username: str, password: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise bad_input("username", "3 to 32 letters, digits, '.', '_' or '-'")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise bad_input("password", f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


async def issue_token(user: User, ttl_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    await AuthToken.create(user=user, token_hash=hash_token(token), expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds))
    return token


async def register(username: str, password: str, ttl_seconds: int) -> tuple[User, str]:
    _check_credentials_shape(username, password)
    folded = fold_username(username)
    if await User.exists(username_folded=folded):
        raise conflict(f"The username {username!r} is taken.")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    try:
        async with atomic():
            user = await User.create(username=username, password_hash=password_hash)
            token = await issue_token(user, ttl_seconds)
    except IntegrityError:  # a concurrent registration took the name first
        raise conflict(f"The username {username!r} is taken.") from None
    return user, token


async def login(username: str, password: str, ttl_seconds: int) -> tuple[User, str]:
    # Only a name register would take can name an account (and a NUL never reaches PostgreSQL).
    user = await User.get_or_none(username_folded=fold_username(username)) if USERNAME_PATTERN.fullmatch(username) else None
    # A password longer than register allows matches no account, yet it is hashed like any
    # other (only its allowed length, to bound the work) so that refusing it takes as long.
    acceptable = user is not None and len(password) <= MAX_PASSWORD_LENGTH
    stored = user.password_hash if acceptable else _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        raise _invalid_credentials() from None
    if not acceptable:
        raise _invalid_credentials()
    return user, await issue_token(user, ttl_seconds)


async def token_record(token: str) -> AuthToken | None:
    """The token's live record (its user selected with it), or None when unknown, revoked or expired."""
    return await AuthToken.filter(
        token_hash=hash_token(token), revoked_at__isnull=True, expires_at__gt=utcnow()
    ).select_related("user").first()


async def user_for_token(token: str) -> User | None:
    record = await token_record(token)
    return record.user if record else None


async def token_expires_at(token: str):
    """When a live token lapses (None for an unknown or revoked one): a stream authenticated by it ends then."""
    record = await AuthToken.filter(
        token_hash=hash_token(token), revoked_at__isnull=True, expires_at__gt=utcnow()
    ).only("id", "expires_at").first()
    return record.expires_at if record else None


async def revoke_token(token: str) -> bool:
    return await AuthToken.filter(token_hash=hash_token(token), revoked_at__isnull=True).update(revoked_at=utcnow()) > 0
