"""Keeps a test's server process on 127.0.0.1: put this folder first on the PYTHONPATH of a
process (``egress_guard_env``) and Python imports it at start-up, before anything else.

It refuses, and appends to the file named by ``FLOWLOOM_TEST_EGRESS_LOG`` one line per attempt:

- connecting a socket (TCP or UDP) to any address but loopback: ``PermissionError``;
- resolving any host name but ``localhost`` (an address literal needs no resolver):
  ``socket.gaierror``, so that no DNS query leaves either;
- starting any child process (a stdio MCP server, a command): ``PermissionError``; except
  ``file`` and ``uname``, which the standard library's ``platform`` module runs for SDKs'
  user-agent strings.

uvloop is hidden so that uvicorn runs asyncio's own loop, whose sockets all pass through
``socket.socket`` (uvloop's connect and resolver are libuv's, out of reach of this guard).
The first line of the log says the guard is in place, so a test can check it was loaded.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from typing import Any

_LOG = os.environ.get("FLOWLOOM_TEST_EGRESS_LOG", "")
_NAMES = {"localhost", "localhost.", "ip6-localhost"}
_HARMLESS = {"file", "uname"}


def _record(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{time.time():.3f} {os.getpid()} {what}\n")


def _loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _loopback(host):
        _record(f"refused connect {address!r}")
        raise PermissionError(f"egress guard: {address!r} is outside 127.0.0.1")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo
_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *rest: Any) -> int:
    _check_address(self, rest[-1])
    return _sendto(self, data, *rest)  # type: ignore[arg-type]


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    text = host.decode() if isinstance(host, bytes) else host
    if text is not None and text.lower() not in _NAMES:
        try:
            ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            _record(f"refused resolve {text!r}")
            message = f"egress guard: {text!r} not resolved"
            raise socket.gaierror(socket.EAI_NONAME, message) from None
    return _getaddrinfo(host, *args, **kwargs)


def _refuse_child(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
    if isinstance(args, list | tuple) and args and os.path.basename(str(args[0])) in _HARMLESS:
        _execute_child(self, args, *rest, **kwargs)
        return
    _record(f"refused process {args!r}")
    raise PermissionError(f"egress guard: no child processes ({args!r})")


if _LOG:
    sys.modules["uvloop"] = None  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo
    subprocess.Popen._execute_child = _refuse_child  # type: ignore[attr-defined]
    _record("guard in place")
