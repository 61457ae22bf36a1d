"""oras-py's registry client over this project's transport (auth, retries), for interoperability tests.

oras-py is a test dependency only (docs/decisions/0025): the product's registry client is its own
(``core/oci_http``). This adapter proves that oras-py's own methods work through that transport: its
``do_request`` is replaced by :meth:`HttpRegistry.send` with the scope each request needs.
"""

from __future__ import annotations

from typing import Any

import oras.provider
import requests

from modelops_bundle.core.oci_http.client import _V2_NAME, HttpRegistry, scope_for


def oras_client(http: HttpRegistry) -> oras.provider.Registry:
    """oras-py's client whose requests go through ``http`` on this thread's session."""

    class Client(oras.provider.Registry):  # type: ignore[misc]
        def do_request(
            self,
            url: str,
            method: str = "GET",
            data: Any = None,
            headers: dict[str, str] | None = None,
            json: Any = None,
            stream: bool = False,
        ) -> requests.Response:
            if json is not None:
                raise TypeError("JSON bodies are not used with registries")
            match = _V2_NAME.search(url)
            scope = scope_for(match.group(1), method not in ("GET", "HEAD")) if match else ""
            return http.send(method, url, scope=scope, headers=headers, body=data, stream=stream)

    client = Client(
        hostname=http.endpoint.host,
        insecure=http.endpoint.scheme == "http",
        tls_verify=http.tls_verify,
        auth_backend="basic",
    )
    client.session.close()
    client.session = http.session()
    return client
