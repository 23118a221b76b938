"""Tests touch no network but loopback: every socket connect of the test process (and the
processes it forks) to an address outside 127.0.0.0/8 and ::1 is refused on the spot, so a URL
in a test that is meant only to be parsed or refused can never be requested by mistake."""

from __future__ import annotations

import ipaddress
import socket

_ALLOWED_NAMES = {"localhost"}


class NetworkRefused(ConnectionRefusedError):
    """A test tried to reach an address outside loopback."""


def _check(address: object) -> None:
    if not isinstance(address, tuple) or not address:
        return  # AF_UNIX paths and the like
    host = str(address[0]).split("%")[0]
    if host.lower() in _ALLOWED_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass  # a name other than localhost: it would need DNS and a route out
    raise NetworkRefused(f"tests may only connect to loopback, not {address!r}")


def install() -> None:
    """Wrap socket.connect and connect_ex of this process with the loopback check."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
