"""The test process refuses any connection outside loopback (tests/loopback_only.py)."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.loopback_only import NetworkRefused


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "http://10.20.1.2:8080/x.jpg", "http://[2001:4860::8888]/"]
)
def test_a_url_outside_loopback_is_never_requested(url):
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(url, timeout=1)
    assert isinstance(caught.value.reason, NetworkRefused)


def test_loopback_still_connects():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
