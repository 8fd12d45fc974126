"""Runners: one module per backend that times models (onnxruntime and LiteRT on the host,
``benchmark_model`` on an Android phone over adb). Each registers itself by name in
``roofline.profilers``'s runner registry.
"""
