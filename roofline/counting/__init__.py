"""Counting: the layer table of a loaded graph (``table``: MACs, parameters, weight / input / output
bytes per layer, and their totals), the fused view a deployed runtime executes (``fuse``), and where
onnxruntime changes tensor layout inside a network (``ort_layout``). Everything here is a pure function
of a ``roofline.ir.Graph``; the rules per op live in ``roofline.ops``.
"""
