"""The node's cluster DNS STAND-IN: answers ``kubernetes.default.svc`` and nothing else.

Exists because kopf, in a pod, logs in at ``https://kubernetes.default.svc`` (as every
in-cluster client may): a real cluster resolves it with CoreDNS, which this node does not
run. This answers A queries for the ``kubernetes`` Service's names with its ClusterIP and
refuses every other name (pods here need no other). UDP only, in a thread of the test run.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

__all__ = ["ServiceDns"]

_NAMES = {
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
}


def _qname(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while (length := packet[offset]) != 0:
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels).lower(), offset + 1


def answer(packet: bytes, address: str) -> bytes:
    """The reply to one query: ``address`` for the Service's names, else NXDOMAIN."""
    (ident,) = struct.unpack("!H", packet[:2])
    name, end = _qname(packet, 12)
    qtype, _qclass = struct.unpack("!HH", packet[end : end + 4])
    question = packet[12 : end + 4]
    known = name.rstrip(".") in _NAMES
    if known and qtype == 1:  # A
        flags, count = 0x8580, 1  # response, authoritative, recursion desired/available
        record = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(address)
    else:
        flags, count, record = (0x8580 if known else 0x8583), 0, b""  # empty or NXDOMAIN
    return struct.pack("!HHHHHH", ident, flags, 1, count, 0, 0) + question + record


class ServiceDns:
    """A UDP DNS responder on ``host:53`` resolving the Service's names to ``address``."""

    def __init__(self, host: str, address: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 53))
        self._address = address
        self._thread = threading.Thread(target=self._serve, name="node-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                packet, peer = self._sock.recvfrom(512)
            except OSError:
                return  # closed by stop()
            with contextlib.suppress(Exception):  # a malformed query gets no reply
                self._sock.sendto(answer(packet, self._address), peer)

    def stop(self) -> None:
        """Stop answering (idempotent)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)
