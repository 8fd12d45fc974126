"""Talk to an Android device with ``adb-shell`` (the ADB protocol straight to ``adbd``; no adb server).

``Device("192.168.1.20:5555")`` (after ``adb tcpip 5555`` on the phone) or ``Device(serial="...")``
(USB, needs ``adb-shell[usb]``). Keys: the user's ``~/.android/adbkey`` when it exists (the phone then
already trusts it), else one generated and kept at ``$ROOFLINE_ADB_KEY`` or ``~/.config/roofline/adbkey``.
Every call has a timeout; ``shell`` recovers the exit status that the legacy shell service does not
carry; every failure is a one-line ``DeviceError`` naming the device and what to do. A TCP link the phone
closes fails the call at once (adb-shell would poll the closed socket until the timeout), and
``reconnect`` tries again a few times within seconds (``RECONNECT_DELAYS_S``).

What the device says is not trusted: ``fingerprint`` drops control characters from its values, and
``safe_name`` makes a serial or model name one harmless file-name component. The generated key is
written 0600 (whole or not at all, ``roofline.files.atomic_write``) in a folder made 0700 (``private_dir``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import socket
import tempfile
import time
import unicodedata
from pathlib import Path

from roofline.errors import RooflineError
from roofline.files import atomic_write, fsync_dir

__all__ = ["Device", "DeviceError", "DeviceGoneError", "UnauthorizedError", "adb_key", "fingerprint", "safe_name",
           "printable", "private_dir", "temperature_c", "hottest_c", "RECONNECT_DELAYS_S",
           "CONNECT_TIMEOUT_S"]  # fmt: skip

_STATUS = "__roofline_status="
#: pauses before each attempt to reconnect after a dropped link (seconds): a phone back within a few
#: seconds is picked up again, one that stays away is reported after these, not after the call timeout
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0)
#: longest wait for a TCP connection to open (a phone gone from the network answers nothing)
CONNECT_TIMEOUT_S = 5.0


class DeviceError(RuntimeError, RooflineError):
    """A device cannot be reached, refuses us, or misbehaves."""


class UnauthorizedError(DeviceError):
    """The device has not accepted this computer's key."""


class DeviceGoneError(DeviceError):
    """The connection dropped or the device stopped answering in the middle of something."""


def adb_key(path=None) -> Path:
    """The private key to authenticate with: ``path``, else ``~/.android/adbkey`` if present, else the
    roofline key, ``$ROOFLINE_ADB_KEY`` or ``~/.config/roofline/adbkey`` (generated on first use: 0600, in a
    folder created 0700; its ``.pub`` 0644)."""
    if path:
        return Path(path).expanduser()
    user = Path.home() / ".android" / "adbkey"
    if user.is_file():
        return user
    own = Path(os.environ.get("ROOFLINE_ADB_KEY") or Path.home() / ".config" / "roofline" / "adbkey").expanduser()
    if not own.is_file():
        _generate_key(own)
    elif own.stat().st_mode & 0o077:  # written 0644 by an older roofline: readable by others
        try:
            own.chmod(0o600)
        except OSError:  # not ours to change
            pass
    if not Path(f"{own}.pub").is_file():
        _write_public_key(own)
    return own


def _generate_key(own: Path) -> None:
    """A new RSA key at ``own``, never readable by others: made in a private temporary folder (0700),
    set 0600, fsynced, then linked into place (a key another process made meanwhile is kept)."""
    from adb_shell.auth.keygen import keygen

    private_dir(own.parent)
    with tempfile.TemporaryDirectory(dir=own.parent, prefix=".adbkey.") as tmp:  # mkdtemp: 0700
        key = Path(tmp) / "adbkey"
        keygen(str(key))
        key.chmod(0o600)
        with open(key, "rb") as f:
            os.fsync(f.fileno())
        try:
            os.link(key, own)  # fails if another process got there first: keep its key
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            os.replace(key, own)
    fsync_dir(own.parent)
    _write_public_key(own)


def _write_public_key(own: Path) -> None:
    """``own.pub`` in Android's format, derived from the private key (so the pair always matches)."""
    from adb_shell.auth.keygen import encode_pubkey, get_user_info

    atomic_write(Path(f"{own}.pub"), base64.b64encode(encode_pubkey(str(own))) + get_user_info().encode(), 0o644)


def private_dir(path) -> Path:
    """Create the folder ``path`` and its missing parents, each readable by this user only (0700); a
    folder that exists already (such as the user's own ``~/.android``) is left as it is."""
    path, missing = Path(path), []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process: not ours to change
            continue
        folder.chmod(0o700)  # the umask can only have taken bits away; this restores exactly 0700
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text, limit: int = 64) -> str:
    """A device-supplied string (a serial, a model name) as one harmless file-name component: only
    ``[A-Za-z0-9._-]``, not starting or ending with ``.``, ``_`` or ``-``, at most ``limit`` characters
    (at least 17), never empty, ``.`` or ``..``. A string that is already such a name comes back as it
    is ("R58M123ABC"); any other is cleaned and ends in 8 hex digits of its hash, so two strings never
    share a name: "../../escaped" -> "escaped-<hash>", "192.168.1.20:5555" -> "192.168.1.20_5555-<hash>"."""
    text = str(text)
    clean = _UNSAFE.sub("_", text).strip("._-")
    if clean and clean == text and len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean[: max(limit, 17) - 9].rstrip('._-')}-{digest}" if clean else f"device-{digest}"


def printable(text, limit: int | None = None) -> str:
    """``text`` without control, format or line-separator characters (a device's terminal escapes,
    carriage returns, bidirectional overrides), cut to ``limit`` characters: safe to show in one line."""
    text = "".join(c for c in str(text) if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    return text[:limit] if limit is not None else text


class Device:
    """One Android device over TCP (``address`` "host:port") or USB (``serial``)."""

    def __init__(self, address: str | None = None, serial: str | None = None, key=None, timeout_s: float = 30.0,
                 auth_timeout_s: float = 10.0):  # fmt: skip
        if bool(address) == bool(serial):
            raise DeviceError("give a device address (HOST:PORT, after `adb tcpip 5555`) or a USB serial, not both")
        self.address, self.serial = address, serial
        self.name = address or f"usb:{serial}"
        self.key = adb_key(key)
        self.timeout_s, self.auth_timeout_s = timeout_s, auth_timeout_s
        self._adb = None

    # -- connection ------------------------------------------------------------------------------

    def connect(self) -> Device:
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner
        from adb_shell.exceptions import DeviceAuthError

        signer = PythonRSASigner(Path(f"{self.key}.pub").read_text(), self.key.read_text())
        try:
            self._adb = self._transport()
            ok = self._adb.connect(rsa_keys=[signer], transport_timeout_s=self.timeout_s,
                                   auth_timeout_s=self.auth_timeout_s, read_timeout_s=self.timeout_s)  # fmt: skip
        except DeviceAuthError:
            raise self._unauthorised() from None
        except (ConnectionRefusedError, OSError) as exc:
            if self._authorising(exc):
                raise self._unauthorised() from None
            reason = getattr(exc, "strerror", None) or exc
            raise DeviceError(f"cannot reach device {self.name}: {reason} (is it on this network, with "
                              "`adb tcpip 5555` run on it over USB first?)") from None  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - adb-shell raises its own zoo of exceptions
            if self._authorising(exc) or "timeout" in type(exc).__name__.lower():  # a pending prompt: no reply
                raise self._unauthorised() from None
            raise DeviceError(f"device {self.name} did not complete the ADB handshake: {_one_line(exc)}") from None
        if not ok:
            raise self._unauthorised()
        return self

    def _transport(self):
        if self.address:
            from adb_shell.adb_device import AdbDevice

            host, _, port = self.address.rpartition(":")
            if not host or not port.isdigit():
                raise DeviceError(f"device address {self.address!r}: expected HOST:PORT, e.g. 192.168.1.20:5555")
            return AdbDevice(_closing_tcp_transport()(host, int(port)), default_transport_timeout_s=self.timeout_s)
        try:
            from adb_shell.adb_device import AdbDeviceUsb

            return AdbDeviceUsb(serial=self.serial, default_transport_timeout_s=self.timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise DeviceError(f"USB device {self.serial}: {_one_line(exc)} (pip install 'adb-shell[usb]'; stop "
                              "any running `adb server` that holds the device)") from None  # fmt: skip

    @staticmethod
    def _authorising(exc: Exception) -> bool:
        return "auth" in type(exc).__name__.lower() or "auth" in str(exc).lower()

    def _unauthorised(self) -> UnauthorizedError:
        return UnauthorizedError(f"device {self.name} did not authorise this computer within "
                                 f"{self.auth_timeout_s:g} s: unlock the phone and accept the 'Allow USB debugging?' "
                                 f"prompt (key {self.key}.pub), then retry")  # fmt: skip

    def reconnect(self, after: DeviceGoneError | None = None) -> Device:
        """Connect again after the link dropped (``after``: that failure, repeated in the message): one
        attempt after each pause of ``RECONNECT_DELAYS_S``, each TCP connect bounded by
        ``CONNECT_TIMEOUT_S``; a ``DeviceGoneError`` when the device stays away."""
        self.close()
        last = None
        for delay in RECONNECT_DELAYS_S:
            time.sleep(delay)
            try:
                return self.connect()
            except UnauthorizedError:
                raise
            except DeviceError as exc:
                last = exc
        first = f"{after}; " if after else f"device {self.name}: "
        raise DeviceGoneError(f"{first}{len(RECONNECT_DELAYS_S)} attempts to reconnect over "
                              f"{sum(RECONNECT_DELAYS_S):g} s failed ({last})") from None  # fmt: skip

    def close(self) -> None:
        if self._adb is not None:
            try:
                self._adb.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
            self._adb = None

    def __enter__(self) -> Device:
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, fn, *args, **kwargs):
        if self._adb is None:
            self.connect()
        try:
            return fn(*args, **kwargs)
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure mid-call: the connection is unusable
            self.close()
            kind = "timed out" if "timeout" in type(exc).__name__.lower() or isinstance(exc, TimeoutError) else "failed"
            raise DeviceGoneError(f"device {self.name}: {what} {kind} ({_one_line(exc)}); the device went away or "
                                  "stopped answering") from None  # fmt: skip

    # -- calls -----------------------------------------------------------------------------------

    def run(self, command: str, timeout_s: float | None = None) -> tuple[int, str]:
        """Run a shell command; returns (exit status, stdout + stderr)."""
        timeout = timeout_s or self.timeout_s
        wrapped = f"({command}\n); echo {_STATUS}$?"  # a subshell: `exit` in the command cannot skip the echo
        options = {"read_timeout_s": timeout, "timeout_s": timeout, "transport_timeout_s": timeout}
        out = self._call(f"`{printable(command, 60)}`", lambda: self._adb.shell(wrapped, **options))
        text, marker, status = out.rpartition(_STATUS)
        if not marker or not status.strip().isdigit():
            raise DeviceGoneError(f"device {self.name}: `{printable(command, 60)}` ended without an exit status "
                                  "(cut off)")  # fmt: skip
        return int(status.strip()), text

    def shell(self, command: str, timeout_s: float | None = None) -> str:
        """Run a shell command that must succeed; returns its output."""
        status, out = self.run(command, timeout_s)
        if status != 0:
            last = next((line for line in reversed(out.strip().splitlines()) if line.strip()), "")
            raise DeviceError(f"device {self.name}: `{printable(command, 60)}` exited with status {status}: "
                              f"{printable(last, 200)}")  # fmt: skip
        return out

    def push(self, local, remote: str, timeout_s: float | None = None) -> None:
        timeout = timeout_s or self.timeout_s
        self._call(f"push of {Path(local).name}", lambda: self._adb.push(str(local), remote, read_timeout_s=timeout,
                                                                           transport_timeout_s=timeout))  # fmt: skip

    def pull(self, remote: str, local, timeout_s: float | None = None) -> None:
        timeout = timeout_s or self.timeout_s
        self._call(f"pull of {remote}", lambda: self._adb.pull(remote, str(local), read_timeout_s=timeout,
                                                                 transport_timeout_s=timeout))  # fmt: skip

    def size(self, remote: str) -> int:
        """Size of a device file in bytes (0 when it does not exist)."""
        return self._call(f"stat of {remote}", lambda: self._adb.stat(remote)[1])


@functools.cache
def _closing_tcp_transport():
    """adb-shell's TCP transport, but a closed link raises ``ConnectionAbortedError``: adb-shell's reads
    take an empty read (end of stream) for no data yet and poll the dead socket, at full CPU, until the
    read timeout. Connecting waits at most ``CONNECT_TIMEOUT_S``."""
    from adb_shell.transport.tcp_transport import TcpTransport

    class ClosingTcpTransport(TcpTransport):
        def connect(self, transport_timeout_s):
            super().connect(min(transport_timeout_s or CONNECT_TIMEOUT_S, CONNECT_TIMEOUT_S))
            # adb-shell sends a packet's header and payload apart: with Nagle's algorithm and the phone's delayed
            # ACKs each call waited ~40 ms (benches/bench_farm.py: 485 -> 39 ms of host time per kernel)
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport_timeout_s is None:  # blocking reads and writes, as adb-shell does without a timeout
                self._connection.setblocking(True)

        def bulk_read(self, numbytes, transport_timeout_s):
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data and numbytes:  # readable, yet nothing: the other end closed the connection
                raise ConnectionAbortedError("the device closed the connection")
            return data

    return ClosingTcpTransport


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {printable(text[0], 200)}" if text else type(exc).__name__


_FINGERPRINT = r"""
for p in ro.product.manufacturer ro.product.model ro.board.platform ro.soc.model ro.hardware \
         ro.build.version.release ro.build.version.sdk ro.product.cpu.abi ro.serialno; do
  echo "prop.$p=$(getprop $p)"
done
n=0; for c in /sys/devices/system/cpu/cpu[0-9]*; do n=$((n+1)); done; echo "cpu_count=$n"
echo "max_freq_khz=$(cat /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq 2>/dev/null | tr '\n' ' ')"
echo "governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)"
echo "thermal_mc=$(cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null | tr '\n' ' ')"
"""


def hottest_c(text: str) -> float | None:
    """The hottest of the thermal zones' readings in ``text`` (millidegrees, as most kernels report them,
    or whole degrees, as some do), in Celsius; None when there is none. Zones that report nonsense (a
    disconnected sensor's -273 or 255 C) are left out."""
    temps = [int(t) for t in text.split() if t.lstrip("-").isdigit()]
    celsius = [t / 1000 if abs(t) >= 1000 else float(t) for t in temps]
    sane = [c for c in celsius if -40 <= c <= 150]
    return max(sane) if sane else None


def temperature_c(device: Device) -> float | None:
    """The device's hottest thermal zone now (Celsius), or None where no zone is readable."""
    _, out = device.run("cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null")  # no zone: a status, no text
    return hottest_c(out)


def fingerprint(device: Device) -> dict:
    """Model, SoC/board, Android version, CPU cores and their max frequencies, governor, and the
    hottest thermal zone (where readable)."""
    values = {}
    for line in device.shell(_FINGERPRINT).split("\n"):  # not splitlines: a "\r" in a value does not end it
        key, sep, value = line.partition("=")
        if sep:  # the device's words: no terminal escapes or control characters, bounded
            values[key.strip()] = printable(value, 1000).strip()
    freqs = sorted({int(f) // 1000 for f in values.get("max_freq_khz", "").split() if f.isdigit()}, reverse=True)
    prop = {k.removeprefix("prop."): v for k, v in values.items() if k.startswith("prop.") and v}
    return {
        "device_model": " ".join(filter(None, (prop.get("ro.product.manufacturer"), prop.get("ro.product.model")))),
        "soc": prop.get("ro.soc.model") or prop.get("ro.board.platform") or prop.get("ro.hardware"),
        "android": prop.get("ro.build.version.release"),
        "sdk": prop.get("ro.build.version.sdk"),
        "abi": prop.get("ro.product.cpu.abi"),
        "serial": prop.get("ro.serialno") or device.name,
        "cpu_count": int(values["cpu_count"]) if values.get("cpu_count", "").isdigit() else None,
        "cpu_max_freqs_mhz": freqs,
        "governor": values.get("governor") or None,
        "thermal_max_c": hottest_c(values.get("thermal_mc", "")),
    }
