"""OAuth 2 against a real local provider: PKCE, the code exchange, refresh, the address policy;
then the stored side on SQLite and PostgreSQL: pending authorizations are single use and
expire, and concurrent callers (in one process or two) refresh an expired token once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from integrations.fake_oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeOAuthProvider,
    challenge_of,
    running_provider,
)
from sqlalchemy import update

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.integrations.oauth import (
    OAuthClient,
    OAuthError,
    OAuthRefused,
    TokenSet,
    authorization_url,
    check_endpoint,
    exchange_code,
    new_pkce,
    new_state,
    pkce_challenge,
    refresh_tokens,
)
from flowloom.integrations.oauth_http import HttpAuthError, HttpAuthHeader, HttpAuthRef
from flowloom.integrations.oauth_repo import OAuthRepo
from flowloom.integrations.oauth_store import DatabaseHttpSecrets
from flowloom.storage.database import Database
from flowloom.storage.repos.credentials import CredentialRepo, rotate_credentials
from flowloom.storage.tables import Credential, User
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Vault

KEY = b"k" * 32
NEW_KEY = b"n" * 32
REDIRECT = "http://flowloom.test/api/v1/oauth/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOAuthProvider]:
    with running_provider() as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh(provider: FakeOAuthProvider) -> None:
    provider.access_lifetime_s = 3600
    provider.refresh_delay_s = 0.0
    provider.deny = False


def client_for(provider: FakeOAuthProvider, **changes: object) -> OAuthClient:
    values: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_url": f"{provider.base_url}/authorize?tenant=t1",
        "token_url": f"{provider.base_url}/token",
        "scopes": ("read", "write"),
        "label": "'fake' (intg_test)",
    }
    values.update(changes)
    return OAuthClient(**values)  # type: ignore[arg-type]


async def authorize(client: OAuthClient, challenge: str, state: str = "s1") -> dict[str, str]:
    """Follow the authorization URL as a browser would, up to the redirect back to us."""
    url = authorization_url(client, redirect_uri=REDIRECT, state=state, code_challenge=challenge)
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_pkce_is_s256_as_in_rfc_7636() -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier, challenge = new_pkce()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert challenge == pkce_challenge(verifier)
    assert len({new_state() for _ in range(100)}) == 100


def test_the_authorization_url_carries_the_request_and_keeps_its_own_query() -> None:
    client = OAuthClient(
        client_id="cid",
        authorization_url="https://auth.example.com/authorize?tenant=t1",
        token_url="https://auth.example.com/token",
        scopes=("a", "b"),
        extra_params={"access_type": "offline", "state": "ignored"},
    )
    url = authorization_url(client, redirect_uri=REDIRECT, state="st", code_challenge="ch")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://auth.example.com/authorize?")
    assert query["tenant"] == ["t1"]
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["cid"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["state"] == ["st"]  # extra_params cannot replace what flowloom sets
    assert query["code_challenge"] == ["ch"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["a b"]
    assert query["access_type"] == ["offline"]


def test_endpoints_must_be_https_unless_plain_http_is_allowed() -> None:
    assert check_endpoint("https://a.example/t", field_name="token_url", allow_plain_http=False)
    for bad in ("http://a.example/t", "ftp://a.example/t", "https:///t", "a.example/t"):
        with pytest.raises(InputError) as refused:
            check_endpoint(bad, field_name="token_url", allow_plain_http=False)
        assert refused.value.field == "token_url"
    assert check_endpoint("http://127.0.0.1:1/t", field_name="t", allow_plain_http=True)
    with pytest.raises(InputError, match="credentials"):
        check_endpoint("https://u:p@a.example/t", field_name="t", allow_plain_http=True)


async def test_code_exchange_with_pkce_then_refresh(provider: FakeOAuthProvider) -> None:
    client = client_for(provider)
    verifier, challenge = new_pkce()
    back = await authorize(client, challenge)
    assert back["state"] == "s1"

    # The wrong verifier is refused by the provider, and the message shows no secret.
    other_verifier, _ = new_pkce()
    with pytest.raises(OAuthRefused) as refused:
        await exchange_code(
            client,
            code=back["code"],
            redirect_uri=REDIRECT,
            code_verifier=other_verifier,
            now=utcnow(),
            allow_private_http=True,
        )
    assert refused.value.error == "invalid_grant"
    assert "intg_test" in str(refused.value)
    for secret in (back["code"], other_verifier, CLIENT_SECRET):
        assert secret not in str(refused.value)

    back = await authorize(client, challenge, state="s2")
    now = utcnow()
    tokens = await exchange_code(
        client,
        code=back["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        now=now,
        allow_private_http=True,
    )
    assert tokens.access_token in provider.live_access_tokens()
    assert tokens.refresh_token in provider.issued
    assert tokens.scopes == ("read", "write")
    assert tokens.expires_at is not None
    assert abs((tokens.expires_at - now).total_seconds() - 3600) < 1
    assert tokens.access_token not in repr(tokens)
    assert provider.token_requests[-1]["code_verifier"] == verifier
    assert challenge_of(verifier) == challenge

    # A code is single use.
    with pytest.raises(OAuthRefused):
        await exchange_code(
            client,
            code=back["code"],
            redirect_uri=REDIRECT,
            code_verifier=verifier,
            now=utcnow(),
            allow_private_http=True,
        )

    assert tokens.refresh_token is not None
    renewed = await refresh_tokens(
        client, refresh_token=tokens.refresh_token, now=utcnow(), allow_private_http=True
    )
    assert renewed.access_token != tokens.access_token
    assert renewed.refresh_token not in (None, tokens.refresh_token)
    with pytest.raises(OAuthRefused, match="invalid_grant"):  # rotated: the old one is spent
        await refresh_tokens(
            client, refresh_token=tokens.refresh_token, now=utcnow(), allow_private_http=True
        )

    # The secret goes in the body with client_secret_post; a wrong one is invalid_client.
    assert renewed.refresh_token is not None
    post = client_for(provider, token_auth_method="client_secret_post")
    again = await refresh_tokens(
        post, refresh_token=renewed.refresh_token, now=utcnow(), allow_private_http=True
    )
    assert provider.token_requests[-1]["client_secret"] == CLIENT_SECRET
    wrong = client_for(provider, client_secret="wrong-secret")
    with pytest.raises(OAuthRefused) as bad_client:
        await refresh_tokens(
            wrong, refresh_token=str(again.refresh_token), now=utcnow(), allow_private_http=True
        )
    assert bad_client.value.error == "invalid_client"
    assert "wrong-secret" not in str(bad_client.value)


async def test_a_private_token_endpoint_is_refused_before_connecting(
    provider: FakeOAuthProvider,
) -> None:
    sent = len(provider.token_requests)
    client = client_for(provider, token_url=f"https://127.0.0.1:{provider.port}/token")
    with pytest.raises(OAuthError, match="loopback") as refused:
        await refresh_tokens(client, refresh_token="rt-x", now=utcnow())
    assert not refused.value.retryable
    with pytest.raises(InputError, match="https"):
        await refresh_tokens(client_for(provider), refresh_token="rt-x", now=utcnow())
    assert len(provider.token_requests) == sent

    closed = client_for(provider, token_url="http://127.0.0.1:9/token")
    with pytest.raises(OAuthError) as unreachable:
        await refresh_tokens(closed, refresh_token="rt-x", now=utcnow(), allow_private_http=True)
    assert unreachable.value.retryable


# ---- stored connections


async def make_user(db: Database) -> str:
    user_id = new_id("usr")
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
    return user_id


async def connect(
    db: Database, provider: FakeOAuthProvider, owner: str, vault: Vault, name: str = "fake"
) -> tuple[str, TokenSet]:
    """A stored connection, authorized through the provider."""
    async with db.write() as s:
        repo = OAuthRepo(s, owner_id=owner, vault=vault)
        info = await repo.create(
            name=name,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorization_url=f"{provider.base_url}/authorize",
            token_url=f"{provider.base_url}/token",
            scopes=["read"],
            allow_plain_http=True,
        )
        client = await repo.client(connection_id=info.id)
    verifier, challenge = new_pkce()
    back = await authorize(client, challenge)
    tokens = await exchange_code(
        client,
        code=back["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        now=utcnow(),
        allow_private_http=True,
    )
    async with db.write() as s:
        await OAuthRepo(s, owner_id=owner, vault=vault).store_tokens(
            connection_id=info.id, tokens=tokens
        )
    return info.id, tokens


async def test_connections_are_owned_and_checked(db: Database) -> None:
    owner, other = await make_user(db), await make_user(db)
    vault = Vault(KEY)
    async with db.write() as s:
        repo = OAuthRepo(s, owner_id=owner, vault=vault)
        with pytest.raises(InputError, match="https") as plain:
            await repo.create(
                name="plain",
                client_id="c",
                authorization_url="http://auth.example.com/a",
                token_url="https://auth.example.com/t",
            )
        assert plain.value.field == "authorization_url"
        with pytest.raises(InputError, match="client_secret"):
            await repo.create(
                name="x",
                client_id="c",
                authorization_url="https://auth.example.com/a",
                token_url="https://auth.example.com/t",
                token_auth_method="client_secret_post",
            )
        with pytest.raises(InputError, match="flowloom sets it"):
            await repo.create(
                name="x",
                client_id="c",
                authorization_url="https://auth.example.com/a",
                token_url="https://auth.example.com/t",
                extra_params={"redirect_uri": "https://evil.example/"},
            )
        info = await repo.create(
            name="public",
            client_id="c",
            authorization_url="https://auth.example.com/a",
            token_url="https://auth.example.com/t",
            scopes=["a", "a", "b"],
        )
    assert info.token_auth_method == "none"
    assert not info.has_client_secret
    assert info.scopes == ["a", "b"]
    assert info.provider == "auth.example.com"
    async with db.write() as s:
        theirs = OAuthRepo(s, owner_id=other, vault=vault)
        with pytest.raises(NotFound):
            await theirs.get(connection_id=info.id)
        with pytest.raises(NotFound):
            await theirs.client(connection_id=info.id)
        assert (await theirs.list()).items == []


async def test_a_pending_authorization_is_single_use_owned_and_expires(db: Database) -> None:
    owner, other = await make_user(db), await make_user(db)
    vault = Vault(KEY)
    async with db.write() as s:
        repo = OAuthRepo(s, owner_id=owner, vault=vault)
        info = await repo.create(
            name="c",
            client_id="c",
            client_secret="s3cret-client",
            authorization_url="https://auth.example.com/a",
            token_url="https://auth.example.com/t",
        )
        for n in range(3):
            await repo.start_authorization(
                connection_id=info.id,
                state=f"state-{n}",
                # Not a string a random id could hold (the repr shows the connection's id).
                code_verifier=f"verifier-{n}",
                redirect_uri="r",
            )
    # Another user cannot use it (and trying does not spend it).
    async with db.write() as s:
        with pytest.raises(InputError):
            await OAuthRepo(s, owner_id=other, vault=vault).consume_authorization(state="state-0")
    async with db.write() as s:
        pending = await OAuthRepo(s, owner_id=owner, vault=vault).consume_authorization(
            state="state-0"
        )
    assert (pending.connection_id, pending.code_verifier) == (info.id, "verifier-0")
    assert "verifier-0" not in repr(pending)
    with pytest.raises(InputError, match="already used"):
        async with db.write() as s:
            await OAuthRepo(s, owner_id=owner, vault=vault).consume_authorization(state="state-0")

    # Ten minutes later it is gone.
    async with db.write() as s:
        await s.execute(
            update(Credential)
            .where(Credential.user_id == owner)
            .values(created_at=utcnow() - timedelta(minutes=11))
        )
    with pytest.raises(InputError, match="expired"):
        async with db.write() as s:
            await OAuthRepo(s, owner_id=owner, vault=vault).consume_authorization(state="state-1")
    # Starting another forgets the expired ones, and no user keeps more than 20.
    async with db.write() as s:
        repo = OAuthRepo(s, owner_id=owner, vault=vault)
        for n in range(25):
            await repo.start_authorization(
                connection_id=info.id, state=f"again-{n}", code_verifier="v", redirect_uri="r"
            )
        assert await repo.count_pending() == 20
        await repo.consume_authorization(state="again-24")
        with pytest.raises(InputError):
            await repo.consume_authorization(state="again-0")


async def test_concurrent_callers_refresh_an_expiring_token_once(
    db: Database, provider: FakeOAuthProvider
) -> None:
    owner = await make_user(db)
    vault = Vault(KEY)
    provider.access_lifetime_s = 30  # within a minute of expiry: refreshed before use
    connection, first = await connect(db, provider, owner, vault)
    provider.refresh_delay_s = 0.3
    secrets = DatabaseHttpSecrets(db, vault, allow_private_http=True)
    before = provider.refreshes
    ref = HttpAuthRef(oauth=connection)
    headers = await asyncio.gather(*(secrets.http_auth(ref, owner_id=owner) for _ in range(5)))
    assert provider.refreshes == before + 1
    assert secrets.refreshes == 1
    assert len({h.value for h in headers}) == 1
    assert headers[0].value != f"Bearer {first.access_token}"
    assert headers[0].value.removeprefix("Bearer ") in provider.live_access_tokens()

    # A 401 answered to the current token refreshes it once more, however many saw it.
    rejected = headers[0]
    again = await asyncio.gather(
        *(secrets.http_auth(ref, owner_id=owner, rejected=rejected) for _ in range(3))
    )
    assert provider.refreshes == before + 2
    assert len({h.value for h in again}) == 1
    assert again[0].value != rejected.value
    # A stale rejection (of a token already replaced) refreshes nothing.
    await secrets.http_auth(ref, owner_id=owner, rejected=rejected)
    assert provider.refreshes == before + 2


async def test_two_processes_racing_to_refresh_both_end_with_the_winners_token(
    db: Database, provider: FakeOAuthProvider
) -> None:
    owner = await make_user(db)
    vault = Vault(KEY)
    provider.access_lifetime_s = 30
    connection, _ = await connect(db, provider, owner, vault)
    provider.refresh_delay_s = 0.2
    # Two engines: two sets of locks, one database; the provider rotates refresh tokens.
    one = DatabaseHttpSecrets(db, vault, allow_private_http=True)
    two = DatabaseHttpSecrets(db, vault, allow_private_http=True)
    ref = HttpAuthRef(oauth=connection)
    a, b = await asyncio.gather(
        one.http_auth(ref, owner_id=owner), two.http_auth(ref, owner_id=owner)
    )
    assert a.value == b.value
    assert one.refreshes + two.refreshes == 1


async def test_a_revoked_refresh_token_fails_naming_the_connection(
    db: Database, provider: FakeOAuthProvider
) -> None:
    owner = await make_user(db)
    vault = Vault(KEY)
    provider.access_lifetime_s = 30
    connection, tokens = await connect(db, provider, owner, vault, name="crm")
    provider.revoke_refresh()
    secrets = DatabaseHttpSecrets(db, vault, allow_private_http=True)
    with pytest.raises(HttpAuthError) as failed:
        await secrets.http_auth(HttpAuthRef(oauth=connection), owner_id=owner)
    message = str(failed.value)
    assert "'crm'" in message
    assert connection in message
    assert "invalid_grant" in message
    assert "authorize the connection again" in message
    assert not failed.value.retryable
    assert tokens.access_token not in message
    assert str(tokens.refresh_token) not in message

    with pytest.raises(HttpAuthError, match="no OAuth connection"):
        await secrets.http_auth(HttpAuthRef(oauth=connection), owner_id=await make_user(db))
    async with db.write() as s:
        unauthorized = await OAuthRepo(s, owner_id=owner, vault=vault).create(
            name="new",
            client_id="c",
            authorization_url="https://auth.example.com/a",
            token_url="https://auth.example.com/t",
        )
    with pytest.raises(HttpAuthError, match="not authorized yet"):
        await secrets.http_auth(HttpAuthRef(oauth=unauthorized.id), owner_id=owner)


async def test_credentials_by_name_and_reserved_names_out_of_reach(db: Database) -> None:
    owner = await make_user(db)
    vault = Vault(KEY)
    async with db.write() as s:
        creds = CredentialRepo(s, owner_id=owner, vault=vault)
        await creds.create(name="gh", value="ghp-token-SECRET", kind="bearer_token")
        info = await OAuthRepo(s, owner_id=owner, vault=vault).create(
            name="c",
            client_id="c",
            client_secret="client-secret-SECRET",
            authorization_url="https://auth.example.com/a",
            token_url="https://auth.example.com/t",
        )
    secrets = DatabaseHttpSecrets(db, vault)
    header = await secrets.http_auth(HttpAuthRef(credential="gh"), owner_id=owner)
    assert (header.name, header.value) == ("Authorization", "Bearer ghp-token-SECRET")
    assert "ghp-token" not in repr(header)
    # The client secret is stored as a credential, but nodes cannot name it.
    with pytest.raises(HttpAuthError, match="no stored credential"):
        await secrets.http_auth(
            HttpAuthRef(credential=f"integration:{info.id}", header="X-Leak"), owner_id=owner
        )
    with pytest.raises(HttpAuthError, match="no owner"):
        await secrets.http_auth(HttpAuthRef(credential="gh"), owner_id=None)


async def test_key_rotation_reseals_tokens_and_client_secrets(
    db: Database, provider: FakeOAuthProvider
) -> None:
    owner = await make_user(db)
    connection, tokens = await connect(db, provider, owner, Vault(KEY))
    async with db.write() as s:
        assert await rotate_credentials(s, vault=Vault(NEW_KEY, old_keys=[KEY])) >= 2
    async with db.write() as s:
        repo = OAuthRepo(s, owner_id=owner, vault=Vault(NEW_KEY))  # the old key is not needed
        stored = await repo.tokens(connection_id=connection)
        client = await repo.client(connection_id=connection)
    assert stored is not None
    assert stored.access_token == tokens.access_token
    assert client.client_secret == CLIENT_SECRET
    header = HttpAuthHeader("Authorization", "Bearer x", ("x",))
    assert "Bearer x" not in repr(header)
