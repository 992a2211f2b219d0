"""kopf's HTTP session with a bounded connection pool (the login handler returns it).

Its own module: kopf is imported here, and the credentials module must stay importable
before kopf is (``__main__`` runs its guard first).
"""

from __future__ import annotations

import aiohttp
import kopf

__all__ = ["bounded_kopf_session"]

# Concurrent short requests kopf may have in flight (finalizer patches), besides watches.
_KOPF_REQUEST_POOL = 32


def bounded_kopf_session(info: kopf.ConnectionInfo, *, streams: int) -> kopf.AiohttpSession:
    """kopf's HTTP session, with a bounded connection pool.

    kopf's own session has no connection limit. When hundreds of runs arrive at once,
    each of their finalizer patches opens a new TLS connection (measured: 300 or more),
    and the handshakes cost CPU on both ends. This session carries kopf's credentials
    and allows ``streams`` long-lived watch connections plus a pool of short requests,
    so watches can never take every slot.
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=streams + _KOPF_REQUEST_POOL, ssl=info.as_ssl_context()
        ),
        headers=info.as_http_headers(),  # bearer token or basic auth, as kopf would send
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )
