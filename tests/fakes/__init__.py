"""Stand-ins for what CI does not have, kept out of the wheel: a phone on loopback (``loopback_adb``:
the ADB wire protocol, a sandboxed shell) and its ``benchmark_model`` (``benchmark_standin``: runs the
model with LiteRT on the host and prints what the real tool prints)."""
