"""Talk to an Android device with ``adb-shell`` (the ADB protocol straight to ``adbd``; no adb server).

``Device("192.168.1.20:5555")`` (after ``adb tcpip 5555`` on the phone) or ``Device(serial="...")``
(USB, needs ``adb-shell[usb]``). Keys: the user's ``~/.android/adbkey`` when it exists (the phone then
already trusts it), else one generated and kept at ``$ROOFLINE_ADB_KEY`` or ``~/.config/roofline/adbkey``.
Every call has a timeout; ``shell`` recovers the exit status that the legacy shell service does not
carry; every failure is a one-line ``DeviceError`` naming the device and what to do. A TCP link the phone
closes fails the call at once (adb-shell would poll the closed socket until the timeout), and
``reconnect`` tries again a few times within seconds (``RECONNECT_DELAYS_S``).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from roofline.errors import RooflineError

__all__ = ["Device", "DeviceError", "DeviceGoneError", "UnauthorizedError", "adb_key", "fingerprint",
           "RECONNECT_DELAYS_S", "CONNECT_TIMEOUT_S"]  # fmt: skip

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
    roofline key (generated on first use)."""
    if path:
        return Path(path).expanduser()
    user = Path.home() / ".android" / "adbkey"
    if user.is_file():
        return user
    own = Path(os.environ.get("ROOFLINE_ADB_KEY", Path.home() / ".config" / "roofline" / "adbkey")).expanduser()
    if not own.is_file():
        from adb_shell.auth.keygen import keygen

        own.parent.mkdir(parents=True, exist_ok=True)
        keygen(str(own))
    return own


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
        out = self._call(f"`{command[:60]}`", lambda: self._adb.shell(wrapped, **options))
        text, marker, status = out.rpartition(_STATUS)
        if not marker or not status.strip().isdigit():
            raise DeviceGoneError(f"device {self.name}: `{command[:60]}` ended without an exit status (cut off)")
        return int(status.strip()), text

    def shell(self, command: str, timeout_s: float | None = None) -> str:
        """Run a shell command that must succeed; returns its output."""
        status, out = self.run(command, timeout_s)
        if status != 0:
            last = next((line for line in reversed(out.strip().splitlines()) if line.strip()), "")
            raise DeviceError(f"device {self.name}: `{command[:60]}` exited with status {status}: {last[:200]}")
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
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


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


def fingerprint(device: Device) -> dict:
    """Model, SoC/board, Android version, CPU cores and their max frequencies, governor, and the
    hottest thermal zone (where readable)."""
    values = {}
    for line in device.shell(_FINGERPRINT).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    freqs = sorted({int(f) // 1000 for f in values.get("max_freq_khz", "").split() if f.isdigit()}, reverse=True)
    temps = [int(t) for t in values.get("thermal_mc", "").split() if t.lstrip("-").isdigit()]
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
        "thermal_max_c": max(temps) / 1000 if temps else None,
    }
