"""Who may call a web endpoint: a bearer token, compared in constant time.

Endpoints that change something (``POST /dq/dlq/replay`` re-injects records into the source topics) are
refused while no token is configured; reads need it only when the operator asks for that. The refusal
names what to do and never echoes the token.
"""

from __future__ import annotations

import hmac

from dqhash.settings import Secret

SCHEME = "Bearer "


def refusal(
    authorization: str | None, token: Secret, changes_state: bool, reads_need_token: bool
) -> tuple[int, str] | None:
    """(status, message) when the request may not proceed; None when it may."""
    if not changes_state and not reads_need_token:
        return None
    if not token:  # (settings refuse DQHASH_WEB_TOKEN_READS without a token, so this is a write)
        return 403, "this endpoint is disabled: set DQHASH_WEB_TOKEN on every worker to enable it"
    if not authorization or not authorization.startswith(SCHEME):
        return 401, "this endpoint needs the header 'Authorization: Bearer <DQHASH_WEB_TOKEN>'"
    given = authorization[len(SCHEME) :].strip().encode()
    if not hmac.compare_digest(given, token.reveal().encode()):
        return 403, "the web token is wrong"
    return None


def bearer(token: Secret) -> dict[str, str]:
    """The header a worker sends when it asks its peers (the list views gather from every worker)."""
    return {"Authorization": SCHEME + token.reveal()} if token else {}
