"""16x8 layers (int16 activations, int8 weights) from TensorFlow's own 16x8 converter mode,
bit-exact with LiteRT BUILTIN_REF on random inputs over the whole int16 range."""

import numpy as np
import pytest

from helpers import assert_bit_exact, convert_keras_int8


def _model(name):
    import keras
    L = keras.layers
    inp = keras.Input((12, 10, 4))
    if name == "conv":
        x = L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inp)
        x = L.Conv2D(5, (2, 3), dilation_rate=(1, 2), padding="valid")(x)
    elif name == "depthwise":
        x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(inp)
    elif name == "dense":
        x = L.Dense(7)(L.Flatten()(inp))
    elif name == "add_sub_mul":
        a = L.Conv2D(4, 1)(inp)
        x = L.Multiply()([L.Subtract()([L.Add()([inp, a]), inp]), a])
    elif name == "leaky_pad_slice":
        x = L.LeakyReLU(negative_slope=0.2)(inp)
        x = L.ZeroPadding2D(((1, 2), (0, 1)))(x)
        x = L.Cropping2D(((2, 1), (1, 0)))(x)
    elif name == "transpose_conv":
        x = L.Conv2DTranspose(3, 3, strides=2, padding="same")(inp)
    elif name == "pool_concat":
        a = L.AveragePooling2D(3, strides=2, padding="same")(inp)
        b = L.MaxPooling2D(2)(L.ZeroPadding2D(((0, 1), (0, 0)))(inp))
        x = L.Flatten()(L.Concatenate()([a, b]))
    return keras.Model(inp, x)


@pytest.mark.parametrize("name", ["conv", "depthwise", "dense", "add_sub_mul", "leaky_pad_slice", "transpose_conv",
                                  "pool_concat"])
def test_16x8_layers_bit_exact(name, tmp_path):
    import keras
    keras.utils.set_random_seed(3)
    model = _model(name)
    rep = np.random.default_rng(0).normal(0, 1.5, (32, 12, 10, 4)).astype(np.float32)
    tfl = convert_keras_int8(model, rep, int16_activations=True)
    assert_bit_exact(tfl, tmp_path, n_random=30)
