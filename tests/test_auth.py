import pytest

from tests.support import register

ME = "{ me { id username vendor { name } } }"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


async def test_register_login_me_logout(client):
    account = await register(client, "alice")
    assert (await client.data(ME, token=account.token))["me"] == {"id": str(account.id), "username": "alice", "vendor": None}

    data = await client.data('mutation { login(username: "alice", password: "correct horse") { token user { username } } }')
    token = data["login"]["token"]
    assert token != account.token and data["login"]["user"]["username"] == "alice"

    assert (await client.data("mutation { logout }", token=token))["logout"] is True
    assert (await client.data(ME, token=token))["me"] is None
    # The other token is untouched by that logout.
    assert (await client.data(ME, token=account.token))["me"]["username"] == "alice"


async def test_anonymous_and_unknown_tokens_are_nobody(client):
    assert (await client.data(ME))["me"] is None
    assert (await client.data(ME, token="not-a-token"))["me"] is None


async def test_unknown_user_and_wrong_password_fail_alike(client):
    await register(client, "alice")
    wrong_password = await client.error('mutation { login(username: "alice", password: "wrong pass") { token } }')
    unknown_user = await client.error('mutation { login(username: "nobody", password: "correct horse") { token } }')
    assert wrong_password["extensions"] == unknown_user["extensions"] == {"code": "UNAUTHENTICATED"}
    assert wrong_password["message"] == unknown_user["message"]


async def test_only_the_whole_password_logs_in_even_at_the_longest(client):
    longest = "p" * 256
    await register(client, "alice", longest)
    login = "mutation($p: String!) { login(username: \"alice\", password: $p) { token } }"
    assert (await client.data(login, {"p": longest}))["login"]["token"]
    for wrong in (longest + "and more", longest[:-1]):
        assert (await client.error(login, {"p": wrong}))["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_taken_username_is_a_conflict(client):
    await register(client, "alice")
    error = await client.error('mutation { register(username: "alice", password: "another pass") { token } }')
    assert error["extensions"]["code"] == "CONFLICT"


@pytest.mark.parametrize("username, password, argument", [
    ("al", "correct horse", "username"),
    ("has space", "correct horse", "username"),
    ("x" * 33, "correct horse", "username"),
    ("alice", "short", "password"),
])
async def test_bad_credentials_shape_names_the_argument(client, username, password, argument):
    error = await client.error(
        "mutation($u: String!, $p: String!) { register(username: $u, password: $p) { token } }",
        {"u": username, "p": password},
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}


async def test_tokens_are_stored_only_as_hashes_and_expire(client):
    from livecart.models.user import AuthToken, hash_token

    account = await register(client, "alice")
    stored = await AuthToken.get(user_id=account.id)
    assert stored.token_hash == hash_token(account.token) and account.token not in stored.token_hash
    await AuthToken.filter(id=stored.id).update(expires_at=stored.created_at)
    assert (await client.data(ME, token=account.token))["me"] is None


async def test_passwords_are_hashed_with_argon2id(client):
    from livecart.models.user import User

    await register(client, "alice")
    assert (await User.get(username="alice")).password_hash.startswith("$argon2id$")


async def test_protected_mutation_without_token_gives_login_url(client):
    error = await client.error("mutation { logout }")
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "loginUrl": "/login"}


async def test_become_vendor_once(client):
    account = await register(client, "seller")
    data = await client.data('mutation { becomeVendor(name: " Shop ") { name user { username } } }', token=account.token)
    assert data["becomeVendor"] == {"name": "Shop", "user": {"username": "seller"}}
    assert (await client.data(ME, token=account.token))["me"]["vendor"] == {"name": "Shop"}
    error = await client.error('mutation { becomeVendor(name: "Again") { id } }', token=account.token)
    assert error["extensions"]["code"] == "CONFLICT"
    error = await client.error('mutation { becomeVendor(name: "  ") { id } }', token=(await register(client, "bob")).token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "name"}



@pytest.mark.parametrize("text", ["\ud800", "x\udfffy"])
async def test_text_that_is_not_unicode_is_bad_input(client, text):
    # Found by tests/test_fuzz.py: JSON's "\ud800" (a lone surrogate) crashed the password
    # hasher and both databases. Refused up front, naming the variable.
    account = await register(client, "seller")
    error = await client.error("mutation($n: String!) { becomeVendor(name: $n) { id } }", {"n": text}, token=account.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "$n"}
    error = await client.error(LOGIN, {"u": "seller", "p": text})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "$p"}
    assert (await client.data(ME, token=account.token))["me"]["vendor"] is None


async def test_a_nul_in_a_name_is_bad_input_and_names_no_account(client):
    # Found by tests/test_fuzz.py: PostgreSQL refuses a NUL in text, so these were crashes there.
    account = await register(client, "seller")
    for name in ("Sh\x00op", "\x00"):
        error = await client.error("mutation($n: String!) { becomeVendor(name: $n) { id } }", {"n": name}, token=account.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "name"}
    error = await client.error('mutation { becomeVendor(name: "Sh\\u0000op") { id } }', token=account.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "name"}
    error = await client.error(LOGIN, {"u": "seller\x00", "p": "correct horse"})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_field_cancelled_mid_lookup_of_the_caller_leaves_its_siblings_their_answer(client):
    """graphql-core cancels a field's siblings once an error nulls their parent; the field that
    happened to start the caller's lookup must not cancel it for the fields still waiting on it
    (their CancelledError escaped the execution: the server dropped the connection, no answer)."""
    from tests.support import make_vendor

    seller = await make_vendor(client, "lookup-seller")
    buyer = await register(client, "lookup-buyer")
    stream_ids = []
    for title in ("Live", "Past"):
        created = await client.data('mutation($t: String!) { createStream(title: $t, productIds: []) { id } }', {"t": title}, token=seller.token)
        stream_ids.append(created["createStream"]["id"])
        await client.data("mutation($id: ID!) { startStream(id: $id) { id } }", {"id": stream_ids[-1]}, token=seller.token)
    ended = await client.data(
        "mutation($id: ID!) { endStream(id: $id, action: SAVE) { savedStream { id } } }", {"id": stream_ids[1]}, token=seller.token
    )
    saved = ended["endStream"]["savedStream"]["id"]
    query = f'{{ liveStreams {{ comments(limit: 0) {{ id }} streamKey }} savedStream(id: {saved}) {{ stats {{ revenue }} }} }}'
    for _ in range(20):
        response = await client.http.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {buyer.token}"})
        assert response.status == 200
        codes = {error["extensions"]["code"] for error in (await response.json())["errors"]}
        assert "INTERNAL_SERVER_ERROR" not in codes and "BAD_USER_INPUT" in codes
