"""A seeded generator of small random Keras models, for hunting mismatches with the reference.

`random_model(seed)` returns (model, rep_data, options): a chain or small DAG of the layers
tinyc's foundation covers (Conv2D with strides/dilation/groups, DepthwiseConv2D with depth
multipliers, Dense on 1-D to 3-D features, Add/Multiply with broadcasting, Concatenate,
ZeroPadding2D, pools, global pooling, Reshape/Flatten, ReLU/ReLU6/sigmoid/softmax,
BatchNorm, MEAN over channels), one or two inputs and outputs, calibration ranges from tiny
to huge, and converter options (int8 or float I/O, per-channel or per-tensor weights).
Everything is drawn from `np.random.default_rng(seed)`, so a seed names one model.
"""

from __future__ import annotations

import numpy as np


def _layers():
    import keras
    return keras, keras.layers, keras.ops


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.keras, self.L, self.K = _layers()
        self.pool: list[tuple[object, tuple]] = []  # (keras tensor, shape without batch)
        self.desc: list[str] = []
        self.max_filters = 8

    # ------------------------------------------------------------------ random helpers
    def r(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def p(self, prob):
        return bool(self.rng.random() < prob)

    def choice(self, items):
        return items[int(self.rng.integers(len(items)))]

    def act(self):
        return self.choice([None, None, "relu", "relu6"])

    def add(self, t, shape, what):
        self.pool.append((t, tuple(int(d) for d in shape)))
        self.desc.append(f"{what} -> {list(shape)}")
        return t, tuple(int(d) for d in shape)

    # ------------------------------------------------------------------ image ops (H, W, C)
    def conv(self, x, s):
        L = self.L
        h, w, c = s
        groups = self.choice([g for g in range(1, c + 1) if c % g == 0]) if self.p(0.25) else 1
        filters = groups * self.r(1, max(1, self.max_filters // groups))
        kh, kw = self.r(1, 4), self.r(1, 4)
        if self.p(0.3):
            strides, dil = (1, 1), (self.r(1, 3), self.r(1, 3))
        else:
            strides, dil = (self.r(1, 3), self.r(1, 3)), (1, 1)
        padding = self.choice(["same", "valid"])
        if padding == "valid" and ((kh - 1) * dil[0] + 1 > h or (kw - 1) * dil[1] + 1 > w):
            padding = "same"
        act = self.act()
        bias = self.p(0.8)
        y = L.Conv2D(filters, (kh, kw), strides=strides, dilation_rate=dil, padding=padding, groups=groups,
                     activation=act, use_bias=bias)(x)
        out = tuple(int(d) for d in y.shape[1:])
        return self.add(y, out, f"Conv2D {filters} k{kh}x{kw} s{strides} d{dil} {padding} g{groups} {act} bias={bias}")

    def depthwise(self, x, s):
        L = self.L
        h, w, c = s
        kh, kw = self.r(1, 4), self.r(1, 4)
        if self.p(0.3):
            strides, dil = (1, 1), (self.r(1, 3), self.r(1, 3))
        else:
            strides, dil = (self.r(1, 3), self.r(1, 3)), (1, 1)
        padding = self.choice(["same", "valid"])
        if padding == "valid" and ((kh - 1) * dil[0] + 1 > h or (kw - 1) * dil[1] + 1 > w):
            padding = "same"
        dm = self.choice([1, 1, 2, 3])
        act = self.act()
        y = L.DepthwiseConv2D((kh, kw), strides=strides, dilation_rate=dil, padding=padding, depth_multiplier=dm,
                              activation=act, use_bias=self.p(0.8))(x)
        return self.add(y, y.shape[1:], f"DepthwiseConv2D k{kh}x{kw} s{strides} d{dil} {padding} dm{dm} {act}")

    def zeropad(self, x, s):
        pads = ((self.r(0, 2), self.r(0, 2)), (self.r(0, 2), self.r(0, 2)))
        y = self.L.ZeroPadding2D(pads)(x)
        return self.add(y, y.shape[1:], f"ZeroPadding2D {pads}")

    def pool2d(self, x, s):
        h, w, c = s
        kind = self.choice(["max", "avg"])
        ph, pw = self.r(1, 3), self.r(1, 3)
        strides = (self.r(1, 3), self.r(1, 3))
        padding = self.choice(["same", "valid"])
        if padding == "valid" and (ph > h or pw > w):
            padding = "same"
        if kind == "avg" and padding == "same":
            # An output window with no input tap is rejected by the reference: keep stride <= pool.
            strides = (min(strides[0], ph), min(strides[1], pw))
        cls = self.L.MaxPooling2D if kind == "max" else self.L.AveragePooling2D
        y = cls((ph, pw), strides=strides, padding=padding)(x)
        return self.add(y, y.shape[1:], f"{kind}pool {ph}x{pw} s{strides} {padding}")

    def gap(self, x, s):
        keep = self.p(0.5)
        y = self.L.GlobalAveragePooling2D(keepdims=keep)(x)
        return self.add(y, y.shape[1:], f"GAP keepdims={keep}")

    def channel_mean(self, x, s):
        keep = self.p(0.6)
        y = self.K.mean(x, axis=-1, keepdims=keep)
        return self.add(y, y.shape[1:], f"mean(axis=-1, keepdims={keep})")

    def batchnorm(self, x, s):
        bn = self.L.BatchNormalization()
        y = bn(x)
        c = s[-1]
        # Non-trivial statistics: the converter folds them into a MUL/ADD (or a conv).
        bn.set_weights([self.rng.uniform(0.5, 2, c).astype(np.float32), self.rng.uniform(-1, 1, c).astype(np.float32),
                        self.rng.uniform(-1, 1, c).astype(np.float32), self.rng.uniform(0.5, 2, c).astype(np.float32)])
        return self.add(y, s, "BatchNormalization")

    # ------------------------------------------------------------------ any rank
    def activation(self, x, s):
        kind = self.choice(["relu", "relu6", "sigmoid", "softmax"])
        if kind == "relu":
            y = self.L.ReLU()(x)
        elif kind == "relu6":
            y = self.L.ReLU(6.0)(x)
        elif kind == "sigmoid":
            y = self.L.Activation("sigmoid")(x)
        else:
            y = self.L.Softmax(axis=-1)(x)
        return self.add(y, s, kind)

    def dense(self, x, s):
        units = self.r(1, 12 * self.max_filters // 8)
        act = self.choice([None, None, "relu", "relu6"])
        y = self.L.Dense(units, activation=act, use_bias=self.p(0.85))(x)
        return self.add(y, y.shape[1:], f"Dense {units} {act} on {list(s)}")

    def reshape(self, x, s):
        n = int(np.prod(s))
        if self.p(0.4) or len(s) == 1:
            divs = [d for d in range(1, n + 1) if n % d == 0]
            a = self.choice(divs)
            new = (a, n // a) if self.p(0.7) else (n // a, 1, a)
            y = self.L.Reshape(new)(x)
            return self.add(y, new, f"Reshape {new}")
        y = self.L.Flatten()(x)
        return self.add(y, (n,), "Flatten")

    def binary(self, x, s):
        """Add or Multiply with a tensor of the same shape, a broadcast one, or a constant."""
        K, L = self.K, self.L
        mul = self.p(0.4)
        same = [t for t, ts in self.pool if ts == s and t is not x]
        mode = self.choice(["pool", "branch", "broadcast", "const"])
        if mode == "pool" and same:
            other, how = self.choice(same), "pool tensor"
        elif mode == "branch" or (mode == "pool" and not same):
            # A sibling branch of the same shape from x.
            if len(s) == 3:
                other = L.Conv2D(s[-1], 1, activation=self.act())(x)
            else:
                other = L.Dense(s[-1])(x)
            how = "sibling branch"
        elif mode == "broadcast" and len(s) == 3:
            other = L.GlobalAveragePooling2D(keepdims=True)(x) if self.p(0.5) else K.mean(x, axis=-1, keepdims=True)
            how = f"broadcast {list(other.shape[1:])}"
        else:
            shape = tuple(1 if self.p(0.5) else d for d in s)
            const = self.rng.uniform(-2, 2, shape).astype(np.float32)
            other, how = const, f"constant {list(shape)}"
        if mul:
            y = L.Multiply()([x, other]) if how in ("pool tensor", "sibling branch") else K.multiply(x, other)
        else:
            y = L.Add()([x, other]) if how in ("pool tensor", "sibling branch") else K.add(other, x)
        return self.add(y, s, f"{'Multiply' if mul else 'Add'} with {how}")

    def concat(self, x, s):
        L = self.L
        same = [t for t, ts in self.pool if ts[:-1] == s[:-1] and t is not x]
        if same and self.p(0.6):
            other = self.choice(same)
        elif len(s) == 3:
            other = L.Conv2D(self.r(1, 4), 1)(x) if self.p(0.5) else L.MaxPooling2D(1)(x)
        else:
            other = L.Dense(self.r(1, 6))(x)
        axis = -1
        y = L.Concatenate(axis=axis)([x, other])
        return self.add(y, y.shape[1:], "Concatenate")


def random_model(seed: int, big: bool = False):
    """(keras.Model, rep_data list, dict(per_tensor, io_type, desc)) for one seed.

    big: inputs up to 32x32x24 (and 512 features) instead of 10x10x5, for the kernels'
    vectorised inner loops and larger accumulations.
    """
    b = _Builder(seed)
    keras, L, K = b.keras, b.L, b.K
    keras.utils.set_random_seed(seed)
    m = 4 if big else 1
    b.max_filters = 8 * m
    kind = b.choice(["image"] * 6 + ["vector"] * 2 + ["sequence"])
    if kind == "image":
        shape = (b.r(1, 32 if big else 10), b.r(1, 32 if big else 10), b.r(1, 24 if big else 5))
    elif kind == "vector":
        shape = (b.r(1, 512 if big else 24),)
    else:
        shape = (b.r(1, 24 if big else 6), b.r(1, 32 if big else 8))
    n_inputs = 2 if b.p(0.2) else 1
    inputs = [keras.Input(shape, batch_size=1) for _ in range(n_inputs)]
    for t in inputs:
        b.add(t, shape, "Input")
    x, s = inputs[0], shape
    if n_inputs == 2:  # the second input joins the first
        how = b.choice(["Add", "Multiply", "Concatenate"])
        x = getattr(L, how)()([inputs[0], inputs[1]])
        x, s = b.add(x, x.shape[1:], f"{how} of the two inputs")
    n_layers = b.r(2, 7)
    for _ in range(n_layers):
        if b.p(0.25) and len(b.pool) > 2:
            x, s = b.choice(b.pool[n_inputs:])  # branch from an earlier tensor: a DAG
        if len(s) == 3:
            ops = [b.conv] * 4 + [b.depthwise] * 3 + [b.zeropad, b.pool2d, b.pool2d, b.gap, b.channel_mean,
                                                      b.batchnorm, b.activation, b.activation, b.binary, b.binary,
                                                      b.concat, b.reshape, b.dense]
        else:
            ops = [b.dense] * 3 + [b.activation, b.binary, b.binary, b.concat, b.reshape, b.batchnorm]
        x, s = b.choice(ops)(x, s)
        if int(np.prod(s)) > 4000 * m * m:
            break
    outputs = [x]
    if b.p(0.25):
        others = [t for t, ts in b.pool[n_inputs:] if t is not x]
        if others:
            outputs.append(b.choice(others))
    model = keras.Model(inputs if n_inputs > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0])
    scale = b.choice([1.0] * 6 + [1e-3, 1e3, 30.0])
    reps = []
    for _ in range(n_inputs):
        lo = -b.rng.uniform(0, 4) * scale if b.p(0.8) else 0.0
        hi = b.rng.uniform(0.2, 4) * scale
        reps.append(b.rng.uniform(lo, hi, (16, *shape)).astype(np.float32))
    opts = dict(per_tensor=b.p(0.3), io_type=b.choice(["int8", "int8", "float"]),
                desc=f"seed {seed}: {kind} {list(shape)} x{n_inputs}, scale {scale}; " + "; ".join(b.desc[n_inputs:]))
    return model, reps, opts
