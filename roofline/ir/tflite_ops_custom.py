"""TFLite CUSTOM operators by custom code (mediapipe's, TFLite_Detection_PostProcess) and StableHLO custom
calls, which name their target the same way. Unknown codes keep their name: ``TFLITE_CUSTOM:<code>``.
"""

from __future__ import annotations

import struct

from roofline.errors import ModelLoadError
from roofline.ir.tflite_ops_base import OpContext, _custom, _opts, _relay, builtin_op, custom_op


@builtin_op("STABLEHLO_CUSTOM_CALL")
def _custom_call(ctx: OpContext):
    return _custom(ctx, getattr(_opts(ctx), "callTargetName", None))


# -- custom operators -------------------------------------------------------------------------------------------


def _struct(ctx: OpContext, fields: int) -> tuple[int, ...]:
    """The first ``fields`` int32 of a custom operator's options (a raw TfLite*Params C struct)."""
    raw = bytes(ctx.custom_options or b"")
    if len(raw) < 4 * fields:
        raise ModelLoadError(
            f"TFLite custom op {ctx.custom_code!r} writing {ctx.outputs[0] if ctx.outputs else '?'!r}: options are "
            f"{len(raw)} bytes, expected a struct of at least {fields} int32"
        )
    return struct.unpack_from(f"<{fields}i", raw)


def _struct_pad(padding: int) -> str:
    return "VALID" if padding == 2 else "SAME_UPPER"  # TfLitePadding: unknown 0, same 1, valid 2


def _flex(ctx: OpContext) -> dict:
    """A custom operator's flexbuffer map of options ({} when it has none)."""
    if not ctx.custom_options:
        return {}
    from flatbuffers import flexbuffers

    try:
        out = flexbuffers.Loads(bytes(ctx.custom_options))
    except Exception as exc:  # noqa: BLE001 - flexbuffers raises anything on damaged bytes
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"TFLite custom op {ctx.custom_code!r}: damaged flexbuffer options ({detail})") from None
    return out if isinstance(out, dict) else {}


@custom_op("Convolution2DTransposeBias")
def _mp_transpose_conv(ctx: OpContext):
    # mediapipe: inputs input, weights (OHWI), bias; options TfLiteTransposeConvParams {padding, stride_w, stride_h}
    padding, stride_w, stride_h = _struct(ctx, 3)
    x, w, b = ctx.inputs[:3]
    o, kh, kw, i = ctx.tensors[w].shape
    _relay(ctx, w, (i, o, kh, kw))
    attrs = {"kernel_shape": [kh, kw], "strides": [stride_h, stride_w], "auto_pad": _struct_pad(padding)}
    return "ConvTranspose", attrs, [x, w, b]


@custom_op("MaxPoolingWithArgmax2D")
def _mp_max_pool_argmax(ctx: OpContext):
    # mediapipe: outputs the pooled values and the argmax indices; options TfLitePoolParams
    # {padding, stride_w, stride_h, filter_w, filter_h, ...}
    padding, stride_w, stride_h, filter_w, filter_h = _struct(ctx, 5)
    attrs = {"kernel_shape": [filter_h, filter_w], "strides": [stride_h, stride_w], "auto_pad": _struct_pad(padding)}
    return "MaxPool", attrs, [ctx.inputs[0]]


@custom_op("MaxUnpooling2D")
def _mp_max_unpool(ctx: OpContext):
    # mediapipe: inputs values, argmax indices; options TfLitePoolParams
    padding, stride_w, stride_h, filter_w, filter_h = _struct(ctx, 5)
    return "MaxUnpool", {"kernel_shape": [filter_h, filter_w], "strides": [stride_h, stride_w]}, list(ctx.inputs[:2])


@custom_op("TransformTensorBilinear", "TransformTensor")
def _mp_transform_tensor(ctx: OpContext):
    # mediapipe: bilinear sampling of the input at an affine transform (4x4 matrix) of each output pixel:
    # GridSample's arithmetic (reads the input and the transform, writes the output)
    return "GridSample", {"mode": "linear"}, list(ctx.inputs[:2])


@custom_op("TransformLandmarks", "Landmarks2TransformMatrix")
def _mp_landmarks(ctx: OpContext):
    return f"TFLITE_CUSTOM:{ctx.custom_code}", {}, list(ctx.inputs)


@custom_op("TFLite_Detection_PostProcess")
def _detection_postprocess(ctx: OpContext):
    # inputs: box encodings, class predictions, anchors; outputs boxes, classes, scores, count. Fast NMS keeps
    # max_detections x max_classes_per_detection detections, regular NMS max_detections
    opts = _flex(ctx)
    n = int(opts.get("max_detections", 10))
    if not opts.get("use_regular_nms", False):
        n *= int(opts.get("max_classes_per_detection", 1))
    return f"TFLITE_CUSTOM:{ctx.custom_code}", {"detections": n}, list(ctx.inputs)
