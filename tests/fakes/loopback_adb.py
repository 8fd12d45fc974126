"""A test phone on loopback: an ADB-protocol device (what ``adbd`` speaks) on 127.0.0.1.

CI has no phone, so this device stands in for one, honestly: it speaks the real wire protocol (CNXN,
AUTH with RSA keys, OPEN, OKAY, WRTE, CLSE; the legacy ``shell:`` service and the ``sync:`` file
service), so Debian's ``adb`` client and ``adb-shell`` both drive it. Its shell runs commands with
``/bin/sh`` in a sandbox folder (device paths under ``/data``, ``/system`` and ``/sys/class/thermal`` map into it), and it ships
a ``getprop``. Its ``benchmark_model`` is whatever the client pushes; ``write_benchmark_standin`` writes
a stand-in that runs the ``.tflite`` with LiteRT on the host and prints ``benchmark_model``'s output.

Faults can be injected, each once: a connection dropped mid-push or mid-run, a stalled reply, a
malformed packet; and the device can refuse to authorise unknown keys. Its properties can be set
(``props``), hostile ones included: ``getprop`` prints them literally.
"""

from __future__ import annotations

import base64
import os
import queue
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LoopbackDevice", "write_benchmark_standin", "decode_adb_pubkey"]


def _cmd(name: bytes) -> int:
    return int.from_bytes(name, "little")


CNXN, AUTH, OPEN, OKAY, WRTE, CLSE = (_cmd(c) for c in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"WRTE", b"CLSE"))
_NAMES = {v: k for k, v in {"CNXN": CNXN, "AUTH": AUTH, "OPEN": OPEN, "OKAY": OKAY, "WRTE": WRTE, "CLSE": CLSE}.items()}
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
VERSION = 0x01000001  # no payload checksums
MAX_DATA = 256 * 1024
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")
_PROPS = {
    "ro.product.model": "Loopback Phone",
    "ro.product.manufacturer": "roofline",
    "ro.product.device": "loopback",
    "ro.board.platform": "loopback",
    "ro.hardware": "loopback",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "x86_64",
    "ro.serialno": "LOOPBACK0001",
}


def decode_adb_pubkey(text: bytes) -> tuple[int, int]:
    """(modulus, exponent) of an adb public key (base64 of Android's RSAPublicKey struct, then a name)."""
    raw = base64.b64decode(text.split(b" ")[0].strip(b"\0").strip())
    words = struct.unpack_from("<I", raw, 0)[0]
    size = 4 * words
    modulus = int.from_bytes(raw[8 : 8 + size], "little")
    exponent = struct.unpack_from("<I", raw, 8 + 2 * size)[0]
    return modulus, exponent


def _verify(token: bytes, signature: bytes, key: tuple[int, int]) -> bool:
    """PKCS#1 v1.5 with the 20-byte token taken as a SHA-1 digest, as adb signs it."""
    n, e = key
    size = (n.bit_length() + 7) // 8
    message = pow(int.from_bytes(signature, "big"), e, n).to_bytes(size, "big")
    suffix = b"\x00" + _SHA1_DIGEST_INFO + token
    return message.startswith(b"\x00\x01") and message.endswith(suffix) and set(message[2 : -len(suffix)]) == {0xFF}


@dataclass
class _Stream:
    local: int  # our id
    remote: int  # the client's id
    acked: threading.Event = field(default_factory=threading.Event)
    inbox: queue.Queue = field(default_factory=queue.Queue)
    closed: bool = False


class _Dropped(Exception):
    """An injected fault closed the connection."""


class LoopbackDevice:
    """An ADB device on ``127.0.0.1:port`` whose file system is the folder ``root``.

    Args:
        root: the sandbox folder (created); device path ``/data/...`` is ``root/data/...``.
        port: 0 picks a free port (see ``address``).
        authorized_keys: adb public keys (file contents) accepted without a prompt.
        accept_new_keys: what the user does at the "Allow USB debugging?" prompt for other keys.
        props: system properties to set or override (``getprop``), e.g. ``{"ro.serialno": "../../x"}``.
    """

    def __init__(self, root, port: int = 0, authorized_keys=(), accept_new_keys: bool = True,
                 props: dict[str, str] | None = None):  # fmt: skip
        self.root = Path(root).resolve()
        self.props = {**_PROPS, **(props or {})}
        (self.root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        self._write_getprop()
        self.keys = [decode_adb_pubkey(k if isinstance(k, bytes) else k.encode()) for k in authorized_keys]
        self.accept_new_keys = accept_new_keys
        self.faults: dict[str, float] = {}
        self.away_until = 0.0  # time.monotonic() until which the phone is away (the "away" fault)
        self.went_away = 0  # how many times it did
        self.log: list[str] = []  # services opened, for tests
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()  # open client connections, cut by close()
        self._conns_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop the phone: no new connections, and every open one is cut (the phone goes away)."""
        self._stop.set()
        self._server.close()
        with self._conns_lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def inject(self, fault: str, value: float = 1.0) -> None:
        """Arm a one-shot fault: "drop_push" (after ``value`` bytes pushed), "drop_run" (during the
        ``value``-th ``benchmark_model --graph=...`` run from now), "stall" (the next shell
        reply waits ``value`` seconds), "malformed" (the next OPEN gets a packet with a bad magic),
        "away" (during the next benchmark run the phone goes away for ``value`` seconds: every connection
        cut, new ones refused, then it comes back)."""
        if fault not in ("drop_push", "drop_run", "stall", "malformed", "away"):
            raise ValueError(f"unknown fault {fault!r}")
        self.faults[fault] = value

    def set_temperature(self, *celsius: float) -> None:
        """The phone's thermal zones now read ``celsius`` (one zone each, in millidegrees as Android's kernel
        writes them); none given: no readable zone."""
        thermal = self.root / "sys" / "class" / "thermal"
        for old in thermal.glob("thermal_zone*/temp"):
            old.unlink()
        for i, c in enumerate(celsius):
            (thermal / f"thermal_zone{i}").mkdir(parents=True, exist_ok=True)
            (thermal / f"thermal_zone{i}" / "temp").write_text(f"{round(c * 1000)}\n")

    # -- files ---------------------------------------------------------------------------------

    def path(self, device_path: str) -> Path:
        """The sandbox file for a device path."""
        p = (self.root / device_path.lstrip("/")).resolve()
        if self.root not in (p, *p.parents):
            raise PermissionError(device_path)
        return p

    def _write_getprop(self) -> None:
        bindir = self.root / "system" / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        q = shlex.quote  # a property is data, whatever it holds: printed, never run
        lines = "\n".join(f"{q(k)}) printf '%s\\n' {q(v)} ;;" for k, v in self.props.items())
        listing = "\n".join(f"printf '%s\\n' {q(f'[{k}]: [{v}]')}" for k, v in self.props.items())
        script = f'#!/bin/sh\nif [ -z "$1" ]; then\n{listing}\nexit 0\nfi\ncase "$1" in\n{lines}\n*) echo ;;\nesac\n'
        (bindir / "getprop").write_text(script)
        (bindir / "getprop").chmod(0o755)

    # -- wire ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._conns_lock:
                if self._stop.is_set():
                    conn.close()
                    return
                if time.monotonic() < self.away_until:  # away: the connection is refused
                    conn.close()
                    continue
                self._conns.add(conn)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as adbd: replies are not held back
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        streams: dict[int, _Stream] = {}
        token = os.urandom(20)
        state = {"max": MAX_DATA, "authed": False, "next": 1}

        def send(cmd: int, arg0: int, arg1: int, data: bytes = b"", magic: int | None = None) -> None:
            header = struct.pack("<6I", cmd, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF,
                                 (cmd ^ 0xFFFFFFFF) if magic is None else magic)  # fmt: skip
            with lock:
                conn.sendall(header + data)

        def recv_exact(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError("client went away")
                buf += chunk
            return buf

        def banner() -> bytes:
            props = ";".join(f"{k}={self.props[k]}" for k in ("ro.product.name", "ro.product.model",
                             "ro.product.device") if k in self.props)  # fmt: skip
            return f"device::{props};features=cmd\0".encode()

        try:
            while not self._stop.is_set():
                cmd, arg0, arg1, length, _check, magic = struct.unpack("<6I", recv_exact(24))
                if magic != cmd ^ 0xFFFFFFFF or cmd not in _NAMES:
                    return  # a malformed packet: adbd drops the connection
                data = recv_exact(length) if length else b""
                if cmd == CNXN:
                    state["max"] = min(arg1 or MAX_DATA, MAX_DATA)
                    if state["authed"]:
                        send(CNXN, VERSION, state["max"], banner())
                    else:  # like every adbd with ro.adb.secure=1: prove who you are
                        send(AUTH, AUTH_TOKEN, 0, token)
                elif cmd == AUTH and arg0 == AUTH_SIGNATURE:
                    if any(_verify(token, data, k) for k in self.keys):
                        state["authed"] = True
                        send(CNXN, VERSION, state["max"], banner())
                    else:
                        token = os.urandom(20)
                        send(AUTH, AUTH_TOKEN, 0, token)
                elif cmd == AUTH and arg0 == AUTH_RSAPUBLICKEY:
                    if self.accept_new_keys:  # the user taps "Allow"
                        self.keys.append(decode_adb_pubkey(data))
                        state["authed"] = True
                        send(CNXN, VERSION, state["max"], banner())
                    # else: the prompt is refused or ignored; the client times out, as with a real phone
                elif not state["authed"]:
                    return
                elif cmd == OPEN:
                    service = data.rstrip(b"\0").decode("utf-8", "replace")
                    self.log.append(service)
                    if self.faults.pop("malformed", None):  # an unknown command with a wrong magic
                        send(0x5A5A5A5A, 0, arg0, b"\xff" * 8, magic=0)
                        continue
                    stream = _Stream(state["next"], arg0)
                    state["next"] += 1
                    streams[stream.local] = stream
                    if service.startswith("shell:"):
                        send(OKAY, stream.local, stream.remote)
                        threading.Thread(target=self._shell, args=(service[6:], stream, send, conn, state),
                                         daemon=True).start()  # fmt: skip
                    elif service == "sync:":
                        send(OKAY, stream.local, stream.remote)
                        threading.Thread(target=self._sync, args=(stream, send, conn, state), daemon=True).start()
                    else:
                        del streams[stream.local]
                        send(CLSE, 0, arg0)
                elif cmd == OKAY:
                    if arg1 in streams:
                        streams[arg1].acked.set()
                elif cmd == WRTE:
                    stream = streams.get(arg1)
                    if stream is None:
                        send(CLSE, 0, arg0)
                        continue
                    send(OKAY, stream.local, stream.remote)
                    stream.inbox.put(data)
                elif cmd == CLSE:
                    stream = streams.pop(arg1, None)
                    if stream is not None:
                        stream.inbox.put(None)
                        stream.acked.set()
                        if not stream.closed:
                            stream.closed = True
                            send(CLSE, stream.local, stream.remote)
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            for stream in streams.values():
                stream.inbox.put(None)
                stream.acked.set()
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    @staticmethod
    def _write(stream: _Stream, send, data: bytes, state) -> None:
        """WRTE ``data`` in packets the client accepts, each after the previous one's OKAY."""
        for i in range(0, len(data), state["max"]):
            stream.acked.clear()
            send(WRTE, stream.local, stream.remote, data[i : i + state["max"]])
            if not stream.acked.wait(30) or stream.closed:
                raise ConnectionError("the client stopped acknowledging")

    def _close(self, stream: _Stream, send) -> None:
        if not stream.closed:
            stream.closed = True
            try:
                send(CLSE, stream.local, stream.remote)
            except OSError:
                pass

    # -- services --------------------------------------------------------------------------------

    def _shell(self, command: str, stream: _Stream, send, conn, state) -> None:
        stall = self.faults.pop("stall", 0.0)
        if stall:
            threading.Event().wait(stall)
        sandboxed = self._sandboxed(command)
        env = {**os.environ, "PATH": f"{self.root}/system/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "ANDROID_ROOT": str(self.root / "system")}  # fmt: skip
        drop = False
        if "--graph=" in command and "drop_run" in self.faults:  # a benchmark_model run
            self.faults["drop_run"] -= 1
            drop = self.faults["drop_run"] <= 0 and self.faults.pop("drop_run") is not None
        if "--graph=" in command and "away" in self.faults:
            self.away_until, drop = time.monotonic() + self.faults.pop("away"), True
            self.went_away += 1
            with self._conns_lock:
                others, self._conns = self._conns - {conn}, {conn}
            for other in others:  # every other connection is cut too
                try:
                    other.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", sandboxed or "true"], cwd=self.root, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
            if drop:  # the phone goes away while the benchmark runs
                threading.Event().wait(0.3)
                proc.kill()
                conn.shutdown(socket.SHUT_RDWR)
                return
            out, _ = proc.communicate()
            self._write(stream, send, out.replace(str(self.root).encode(), b""), state)
        except (ConnectionError, OSError):
            return
        self._close(stream, send)

    def _sandboxed(self, command: str) -> str:
        """``command`` with its device paths moved into the sandbox: a ``/data/``, ``/system/`` or ``/sys/class/thermal/`` that
        starts a shell word or follows its ``=`` (``--graph=/data/...``). A quoted string is one word, so
        in ``'/data/x; touch /data/y'`` only the first path maps, as the sync service maps the same name."""
        out, quote, i = [], None, 0
        while i < len(command):
            c, prev = command[i], command[i - 1] if i else " "
            if c == "/" and command.startswith(("/data/", "/system/", "/sys/class/thermal/"), i):
                starts = prev in (quote, "=") if quote else not (prev.isalnum() or prev in "_/.")
                out.append(str(self.root) if starts else "")
            elif c == "\\" and quote != "'":  # an escaped character is never a quote
                out.append(command[i : i + 2])
                i += 2
                continue
            elif c in "'\"" and quote in (None, c):
                quote = None if quote else c
            out.append(c)
            i += 1
        return "".join(out)

    def _sync(self, stream: _Stream, send, conn, state) -> None:
        buf = bytearray()

        def read(n: int) -> bytes:
            while len(buf) < n:
                chunk = stream.inbox.get(timeout=60)
                if chunk is None:
                    raise ConnectionError("sync stream closed")
                buf.extend(chunk)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        def reply(data: bytes) -> None:
            self._write(stream, send, data, state)

        try:
            while True:
                ident, length = struct.unpack("<4sI", read(8))
                if ident == b"QUIT":
                    break
                arg = read(length).decode("utf-8", "replace")
                if ident == b"STAT":
                    p = self.path(arg)
                    st = p.stat() if p.exists() else None
                    reply(struct.pack("<4s3I", b"STAT", st.st_mode if st else 0, st.st_size if st else 0,
                                      int(st.st_mtime) if st else 0))  # fmt: skip
                elif ident == b"LIST":
                    p = self.path(arg)
                    out = b""
                    for child in sorted(p.iterdir()) if p.is_dir() else []:
                        st, name = child.stat(), child.name.encode()
                        out += struct.pack("<4s4I", b"DENT", st.st_mode, st.st_size, int(st.st_mtime), len(name)) + name
                    reply(out + struct.pack("<4s4I", b"DONE", 0, 0, 0, 0))
                elif ident == b"SEND":
                    self._receive_file(arg, read, reply, send, conn)
                elif ident == b"RECV":
                    p = self.path(arg)
                    if not p.is_file():
                        msg = b"No such file or directory"
                        reply(struct.pack("<4sI", b"FAIL", len(msg)) + msg)
                        continue
                    data = p.read_bytes()
                    out = b"".join(struct.pack("<4sI", b"DATA", len(data[i : i + 65536])) + data[i : i + 65536]
                                   for i in range(0, len(data), 65536))  # fmt: skip
                    reply(out + struct.pack("<4sI", b"DONE", 0))
                else:
                    msg = f"unknown sync request {ident!r}".encode()
                    reply(struct.pack("<4sI", b"FAIL", len(msg)) + msg)
                    break
        except (ConnectionError, OSError, queue.Empty, struct.error, _Dropped):
            return
        self._close(stream, send)

    def _receive_file(self, arg: str, read, reply, send, conn) -> None:
        device_path, _, mode = arg.rpartition(",")
        target = self.path(device_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")  # a file appears whole or not at all
        limit = self.faults.pop("drop_push", None)
        received = 0
        with open(partial, "wb") as f:
            while True:
                ident, length = struct.unpack("<4sI", read(8))
                if ident == b"DONE":
                    break
                if ident != b"DATA":
                    raise ConnectionError(f"unexpected {ident!r} in a push")
                chunk = read(length)
                f.write(chunk)
                received += len(chunk)
                if limit is not None and received >= limit:
                    conn.shutdown(socket.SHUT_RDWR)  # the cable is pulled
                    raise _Dropped()
        os.replace(partial, target)
        target.chmod((int(mode) if mode.isdigit() else 0o644) & 0o777)  # adb sends st_mode in decimal
        reply(struct.pack("<4sI", b"OKAY", 0))


def write_benchmark_standin(path) -> Path:
    """Write the loopback device's ``benchmark_model``: runs the ``.tflite`` with LiteRT on this host and
    prints what the real tool prints (see ``benchmark_standin`` beside this file)."""
    path = Path(path)
    here = str(Path(__file__).resolve().parent)
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {here!r})\n"
                    "from benchmark_standin import main\nraise SystemExit(main())\n")  # fmt: skip
    path.chmod(0o755)
    return path
