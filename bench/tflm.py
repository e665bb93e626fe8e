"""TensorFlow Lite Micro, the peer tinyc measures itself against (package tflite-micro).

TFLM reports its arena only on stderr, from C++, after print_allocations(); we run it in a
child process and read the RecordingMicroAllocator lines.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tinyc.errors import TinycError

_CHILD = r"""
import sys
from tflite_micro.python.tflite_micro import runtime
interp = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
interp.print_allocations()
"""


def tflm_arena(model: Path, arena_size: int = 4 * 1024 * 1024) -> dict:
    """{'total': N, 'head': N, 'tail': N} bytes as TFLM's RecordingMicroAllocator reports."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(arena_size)],
                          capture_output=True, text=True, timeout=300)
    text = proc.stderr + proc.stdout
    found = {}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", text)
        if m:
            found[key] = int(m.group(1))
    if "total" not in found:
        raise TinycError(f"tflite-micro reported no arena for {model} (exit {proc.returncode}): "
                         f"{text.strip().splitlines()[-1] if text.strip() else 'no output'}")
    return found
