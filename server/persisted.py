"""Persisted documents: Apollo's automatic persisted queries, and trusted documents.

Automatic persisted queries (APQ): a client sends only `extensions.persistedQuery.sha256Hash`;
an unknown hash is answered with PERSISTED_QUERY_NOT_FOUND (status 200 and the message
`PersistedQueryNotFound`, which Apollo's PersistedQueryLink takes as "send the query too",
never as "turn hashing off"); the client then sends query and hash, the hash is checked
(a mismatch is refused, nothing stored) and the document kept (in Redis when configured, so
every process knows it, else in this process). A GET by hash is then cacheable.

Trusted documents (`TRUSTED_DOCUMENTS=path/to/manifest.json`, for production): only the
documents in the manifest run, asked by hash (`extensions.persistedQuery.sha256Hash`, Apollo;
`documentId`, The Guild's and the GraphQL-over-HTTP draft's) or by their exact text (so the
pages and clients that send full documents keep working); anything else is refused with
PERSISTED_QUERY_NOT_ALLOWED, except introspection while it is enabled. Nothing is registered.
The manifest may be Apollo's (`{"format": "apollo-persisted-query-manifest", "operations":
[{"id", "body", ...}]}`) or The Guild's (`{"<hash>": "<document>"}`); `livecart
trusted-documents` writes the pages' own.
"""
from __future__ import annotations

import hashlib
import json
import logging
import pathlib
import re
from collections import OrderedDict
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse

from livecart.models.errors import ErrorCode
from livecart.subscriptions.redis_channels import database_number

log = logging.getLogger("livecart.persisted")

APQ_TTL_SECONDS = 7 * 24 * 3600
LOCAL_DOCUMENTS = 2048


class ManifestError(ValueError):
    """A trusted-documents manifest that cannot be used (one line naming the file)."""


class PersistedRefusal(Exception):
    def __init__(self, code: ErrorCode, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"errors": [{"message": self.message, "extensions": {"code": self.code.value}}]}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_manifest(path: str) -> dict[str, str]:
    """hash -> document, from Apollo's or The Guild's manifest format."""
    try:
        raw = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"TRUSTED_DOCUMENTS: cannot read {path}: {exc}") from None
    documents: dict[str, str] = {}
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        for operation in raw["operations"]:
            if not (isinstance(operation, dict) and isinstance(operation.get("id"), str) and isinstance(operation.get("body"), str)):
                raise ManifestError(f"TRUSTED_DOCUMENTS: {path}: every operation needs a string id and body")
            documents[operation["id"]] = operation["body"]
    elif isinstance(raw, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        documents = {key.removeprefix("sha256:"): value for key, value in raw.items()}
    else:
        raise ManifestError(f"TRUSTED_DOCUMENTS: {path} is neither an Apollo persisted query manifest nor a hash-to-document map")
    for key, document in documents.items():
        if key != sha256(document):
            raise ManifestError(f"TRUSTED_DOCUMENTS: {path}: {key} is not the sha256 of its document")
    return documents


def is_introspection(query: str) -> bool:
    try:
        document = parse(query)
    except GraphQLError:
        return False
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            name = getattr(getattr(selection, "name", None), "value", "")
            if not name.startswith("__"):
                return False
    return True


class PersistedDocuments:
    def __init__(self, redis_client: Any | None, trusted: dict[str, str] | None, introspection: bool) -> None:
        self._redis = redis_client
        self._local: OrderedDict[str, str] = OrderedDict()
        self.trusted = trusted
        self._trusted_texts = frozenset(trusted.values()) if trusted is not None else frozenset()
        self._introspection = introspection
        if redis_client is not None:
            self._prefix = f"livecart:{database_number(redis_client)}:apq:"

    async def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters with its document in `query`; PersistedRefusal otherwise."""
        query = params.get("query")
        wanted = _hash_asked(params)
        if wanted is not None:
            if isinstance(query, str) and query:
                if sha256(query) != wanted:
                    raise PersistedRefusal(ErrorCode.BAD_USER_INPUT, "provided sha does not match query", status=400)
                if self.trusted is None:
                    await self._store(wanted, query)
            else:
                query = await self._lookup(wanted)
                if query is None:
                    if self.trusted is not None:
                        raise PersistedRefusal(
                            ErrorCode.PERSISTED_QUERY_NOT_ALLOWED, "Only trusted documents may run here.", status=400
                        )
                    raise PersistedRefusal(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
                params = {**params, "query": query}
        if self.trusted is not None and isinstance(query, str) and query not in self._trusted_texts:
            if not (self._introspection and is_introspection(query)):
                raise PersistedRefusal(ErrorCode.PERSISTED_QUERY_NOT_ALLOWED, "Only trusted documents may run here.", status=400)
        return params

    async def _lookup(self, key: str) -> str | None:
        if self.trusted is not None:
            return self.trusted.get(key)
        found = self._local.get(key)
        if found is not None or self._redis is None:
            return found
        try:
            value = await self._redis.get(self._prefix + key)
        except Exception as exc:  # noqa: BLE001 - the client sends the document again: nothing lost
            log.debug("persisted query lookup failed: %r", exc)
            return None
        if value is None:
            return None
        text = value.decode()
        self._remember(key, text)
        return text

    async def _store(self, key: str, query: str) -> None:
        self._remember(key, query)
        if self._redis is not None:
            try:
                await self._redis.set(self._prefix + key, query, ex=APQ_TTL_SECONDS)
            except Exception as exc:  # noqa: BLE001 - known here; other processes ask for it once
                log.debug("persisted query not shared: %r", exc)

    def _remember(self, key: str, query: str) -> None:
        self._local[key] = query
        self._local.move_to_end(key)
        while len(self._local) > LOCAL_DOCUMENTS:
            self._local.popitem(last=False)


def _hash_asked(params: dict[str, Any]) -> str | None:
    extensions = params.get("extensions") or {}
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
        return persisted["sha256Hash"].lower()
    document_id = params.get("documentId")
    if isinstance(document_id, str) and document_id:
        return document_id.removeprefix("sha256:").lower()
    return None


# ---------------------------------------------------------------- the pages' own documents

_CONST = re.compile(r"""\bconst\s+([A-Z][A-Z0-9_]*)\s*=\s*(`(?:[^`\\]|\\.)*`|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""", re.S)
_LITERAL = re.compile(r"""`(?:[^`\\]|\\.)*`|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""", re.S)
_INTERPOLATION = re.compile(r"\$\{\s*([A-Z][A-Z0-9_]*)\s*\}")


def _literal_text(literal: str, constants: dict[str, str]) -> str | None:
    """The text of a JavaScript string literal, its ${CONSTANT}s filled in from the file's own
    string constants; None when it holds anything else (computed at run time: not a document)."""
    body = literal[1:-1]
    if literal[0] == "`":
        unresolved = False

        def fill(match: re.Match) -> str:
            nonlocal unresolved
            if match[1] not in constants:
                unresolved = True
                return ""
            return constants[match[1]]

        body = _INTERPOLATION.sub(fill, body)
        if unresolved or "${" in body:
            return None
    if "\\" in body:
        return None  # escapes: no document of ours needs them
    return body


def page_documents(static_dir: pathlib.Path, is_document: Any) -> list[str]:
    """Every GraphQL document the pages' scripts send: each string literal (constants filled in)
    that `is_document` accepts (parses and validates against the schema), in file order."""
    found: list[str] = []
    for path in sorted(static_dir.glob("*.js")):
        source = path.read_text(encoding="utf-8")
        constants: dict[str, str] = {}
        for match in _CONST.finditer(source):
            text = _literal_text(match[2], constants)
            if text is not None:
                constants[match[1]] = text
        for match in _LITERAL.finditer(source):
            text = _literal_text(match[0], constants)
            if text and text.lstrip()[:1] in ("q", "m", "s", "{") and text not in found and is_document(text):
                found.append(text)
    return found


def apollo_manifest(documents: list[str]) -> dict[str, Any]:
    """Apollo's persisted query manifest format (which TRUSTED_DOCUMENTS reads too)."""
    operations = []
    for document in documents:
        parsed = parse(document)
        operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
        operations.append({
            "id": sha256(document),
            "name": operation.name.value if operation.name else None,
            "type": operation.operation.value,
            "body": document,
        })
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
