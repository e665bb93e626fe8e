"""The reference interpreters in a child process (`python -m tinyc.reference_worker ENGINE MODEL`).

LiteRT aborts the whole process on some models (a heap-corruption abort on
keyword_scrambled_8bit), so tinyc never runs a reference in its own process when it
validates: this worker loads one model with one engine ("litert": LiteRT BUILTIN_REF, or
"tflm": TensorFlow Lite Micro's interpreter), then answers requests on stdin/stdout with
pickled values: a list of input arrays in, ("ok", [output arrays]) or ("error", message) out.
The first message it sends is ("ready", None) or ("error", message). C-level prints of the
interpreters go to stderr; the protocol has the original stdout to itself.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np


class _LiteRT:
    def __init__(self, path: str):
        from tinyc.reference import Reference
        self.ref = Reference(path)

    def run(self, inputs):
        return self.ref.run(*inputs)


class _TFLM:
    def __init__(self, path: str):
        from tflite_micro.python.tflite_micro import runtime
        self.interp = runtime.Interpreter.from_file(path, arena_size=16 * 1024 * 1024)
        self.n_out = len(_outputs_of(path))

    def run(self, inputs):
        for k, value in enumerate(inputs):
            self.interp.set_input(np.ascontiguousarray(value), k)
        self.interp.invoke()
        return [np.array(self.interp.get_output(k)) for k in range(self.n_out)]


def _outputs_of(path: str) -> list[int]:
    from tinyc.frontend.tflite import load_tflite
    return load_tflite(path).outputs


def main(argv: list[str]) -> int:
    engine, path = argv[1], argv[2]
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # interpreters that print to stdout now print to stderr
    sys.stdout = sys.stderr
    try:
        runner = (_TFLM if engine == "tflm" else _LiteRT)(path)
    except Exception as exc:  # noqa: BLE001 - any failure to load is reported as one line
        pickle.dump(("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0]), proto)
        proto.flush()
        return 1
    pickle.dump(("ready", None), proto)
    proto.flush()
    stdin = sys.stdin.buffer
    while True:
        try:
            inputs = pickle.load(stdin)
        except EOFError:
            return 0
        try:
            reply = ("ok", runner.run(inputs))
        except Exception as exc:  # noqa: BLE001
            reply = ("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        pickle.dump(reply, proto)
        proto.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
