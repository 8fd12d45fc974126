"""Regenerate tests/data/converters/keras: keras.applications models converted by TFLiteConverter.

Not run by the tests (it needs TensorFlow, which is not a dependency). Outside the repo:

    python3.11 -m venv /tmp/gen-tf && /tmp/gen-tf/bin/pip install tensorflow==2.21.0
    /tmp/gen-tf/bin/python tests/data/converters/keras/make_keras.py [NAME ...]
    .venv/bin/python tests/data/converters/make_reference.py     # then refresh reference.json

Each network (weights=None, classes=10, so nothing is downloaded) gets deterministic LOW-ENTROPY
weights (every variable takes values from five levels, offset per variable so no two layers hold the
same bytes), then is converted four ways by TensorFlow's TFLiteConverter:

    NAME.fp32.tflite     no optimisation
    NAME.fp16.tflite     Optimize.DEFAULT + supported_types=[tf.float16]  (fp16 weights -> DEQUANTIZE)
    NAME.dynamic.tflite  Optimize.DEFAULT, no dataset (int8 weights, float activations)
    NAME.int8.tflite     Optimize.DEFAULT + representative dataset, int8 builtins, int8 input/output

and one sparse model (MobileNetV2, 1x4-block 75%-zero kernels, Optimize.EXPERIMENTAL_SPARSITY).
Files are stored xz-compressed (NAME.*.tflite.xz, python's lzma) when that saves more than half.
mobilenet_v3_small_open keeps keras' open input (shape_signature [-1, -1, -1, 3]); the others are
fixed at batch 1 and 224x224 (or the size in MODELS).
"""

from __future__ import annotations

import lzma
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras = tf.keras
HERE = Path(__file__).parent
LEVELS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0], np.float32)

# name: (constructor, kwargs, input shape (None = open), variants)
ALL = ("fp32", "fp16", "dynamic", "int8")
MODELS = {
    "mobilenet_v1_025": (lambda **k: keras.applications.MobileNet(alpha=0.25, **k), {"input_shape": (224, 224, 3)},
                         (1, 224, 224, 3), ALL),
    "mobilenet_v2_035": (lambda **k: keras.applications.MobileNetV2(alpha=0.35, **k), {"input_shape": (224, 224, 3)},
                         (1, 224, 224, 3), ALL),
    "mobilenet_v3_small": (lambda **k: keras.applications.MobileNetV3Small(alpha=0.75, **k),
                           {"input_shape": (224, 224, 3)}, (1, 224, 224, 3), ALL),
    "mobilenet_v3_small_open": (lambda **k: keras.applications.MobileNetV3Small(alpha=0.75, **k), {"input_shape": None},
                                (None, None, None, 3), ALL),
    "efficientnet_b0": (lambda **k: keras.applications.EfficientNetB0(**k), {"input_shape": (224, 224, 3)},
                        (1, 224, 224, 3), ALL),
    # not from keras.applications: a small net with TRANSPOSE_CONV and attention (BATCH_MATMUL)
    "tiny_unet_attention": (lambda **k: tiny_unet_attention(**k), {"input_shape": (64, 64, 3)}, (1, 64, 64, 3), ALL),
}  # fmt: skip


def tiny_unet_attention(weights=None, classes=10, input_shape=(64, 64, 3)):
    """Two strided convs, self-attention over the 16x16 grid, two transposed convs back to 64x64."""
    L = keras.layers
    x = keras.Input(input_shape)
    c1 = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)  # 32x32x16
    c2 = L.Conv2D(32, 3, strides=2, padding="same", activation="relu")(c1)  # 16x16x32
    t = L.Reshape((256, 32))(c2)
    t = L.MultiHeadAttention(num_heads=2, key_dim=16)(t, t)  # 256 tokens, 2 heads of 16
    t = L.Reshape((16, 16, 32))(t)
    u = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(t)  # 32x32x16
    u = L.Concatenate()([u, c1])
    u = L.Conv2DTranspose(8, 4, strides=2, padding="same")(u)  # 64x64x8
    return keras.Model(x, L.Conv2D(classes, 1)(u), name="tiny_unet_attention")


def set_low_entropy(model, sparse: bool = False) -> None:
    """Give every variable values from a handful of levels (so the files compress), deterministically.

    Kernels get LEVELS * 0.05 cycling along the flat index, offset and scaled by the variable's
    position (no two layers are identical, so no converter merges their buffers); BN gamma / moving variance are
    positive (1 + 0.1 * level), beta / mean / biases small. With `sparse`, conv kernels are zero
    except in every fourth block of four input channels (75% zeros in 1x4 blocks along Cin, the
    innermost dimension of a TFLite filter).
    """
    for i, v in enumerate(model.weights):
        shape = tuple(v.shape)
        n = int(np.prod(shape)) if shape else 1
        idx = (np.arange(n) * 7 + i) % len(LEVELS)
        lv = LEVELS[idx].reshape(shape) * (1 + 0.001 * i)  # a scale per variable: no two alike
        name = v.path if hasattr(v, "path") else v.name
        if "gamma" in name or "variance" in name:
            val = 1.0 + 0.1 * lv
        elif "beta" in name or "mean" in name or "bias" in name:
            val = 0.01 * lv
        else:
            val = 0.05 * lv
            if sparse and len(shape) == 4 and "depthwise" not in name and shape[2] >= 8:
                cin = np.arange(shape[2])
                keep = ((cin // 4) % 4 == 0).astype(np.float32)  # Keras kernel [Kh, Kw, Cin, Cout]
                val = val * keep[None, None, :, None]
        v.assign(val.astype(np.float32))


def converter_for(model, input_shape):
    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32, name="input")])
    def serve(x):
        return model(x, training=False)

    # freeze the variables into constants (else the converter keeps them as VAR_HANDLE/READ_VARIABLE)
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def representative(input_shape):
    shape = [1 if d is None else d for d in input_shape]
    if None in input_shape:
        shape = [1, 224, 224, 3]
    rng = np.random.default_rng(0)

    def gen():
        for _ in range(4):
            yield [rng.uniform(0, 255, size=shape).astype(np.float32)]

    return gen


def convert(model, input_shape, variant: str) -> bytes:
    c = converter_for(model, input_shape)
    if variant == "fp16":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = representative(input_shape)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
    elif variant == "sparse":
        c.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return c.convert()


def save(name: str, data: bytes) -> Path:
    packed = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    for old in (HERE / f"{name}.tflite", HERE / f"{name}.tflite.xz"):
        old.unlink(missing_ok=True)
    if len(packed) < len(data) / 2:
        path = HERE / f"{name}.tflite.xz"
        path.write_bytes(packed)
    else:
        path = HERE / f"{name}.tflite"
        path.write_bytes(data)
    print(f"{path.name}: {len(data) / 1e3:.0f} kB -> {path.stat().st_size / 1e3:.0f} kB", flush=True)
    return path


def main() -> int:
    names = sys.argv[1:] or [*MODELS, "sparse"]
    for name in names:
        if name == "sparse":
            keras.backend.clear_session()
            m = keras.applications.MobileNetV2(alpha=0.35, weights=None, classes=10, input_shape=(224, 224, 3))
            set_low_entropy(m, sparse=True)
            save("mobilenet_v2_035_sparse75.sparse", convert(m, (1, 224, 224, 3), "sparse"))
            continue
        make, kwargs, input_shape, variants = MODELS[name]
        keras.backend.clear_session()
        m = make(weights=None, classes=10, **kwargs)
        set_low_entropy(m)
        for variant in variants:
            try:
                save(f"{name}.{variant}", convert(m, input_shape, variant))
            except Exception as e:  # noqa: BLE001 - report and go on with the other variants
                print(f"{name}.{variant}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
