"""Cross-build OUTDIR's generated C into firmware for a non-host board.

mcu boards:   model + firmware/common (protocol server) + firmware/cortexm (start-up,
              UART driver, cycle counter) -> firmware.elf (+ firmware.bin), linked with a
              script rendered from the board's memory sizes. A board with `firmware =
              "aarch64"` (a72-virt) takes firmware/aarch64 instead, and its `libs`.
linux boards: model + firmware/common + firmware/linux -> a static `tinyc_server`.

Sizes are checked against the board twice before linking: from tinyc.json (weights and
arena, before anything is compiled) and from the compiled objects; both errors give the
numbers and how much is over.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tinyc import __version__
from tinyc.boards import Board
from tinyc.build.ram import io_buffer_bytes
from tinyc.build.toolchain import (STRICT_CFLAGS, BuildResult, fingerprint, forget_build, is_fresh, model_result,
                                   record_build, run_tool, section_sizes)
from tinyc.errors import TinycError
from tinyc.outdir import MODEL_SOURCES, Manifest, binary_path, build_dir, generated_files, load_manifest
from tinyc.resources import firmware_dir

CYCLE_SOURCE_CODES = {"none": 0, "systick": 1, "dwt": 2, "clock": 3, "pmccntr": 4}
MCU_CFLAGS = ["-ffunction-sections", "-fdata-sections", "-fno-common"]


# ---------------------------------------------------------------------------- helpers

def toolchain_tools(board: Board) -> dict[str, str]:
    """cc, size and objcopy of the board's toolchain (same prefix as cc)."""
    cc = board.cc
    prefix = cc[:-3] if cc.endswith("gcc") else ""
    return {"cc": cc, "size": f"{prefix}size", "objcopy": f"{prefix}objcopy"}


def require_toolchain(board: Board) -> None:
    if shutil.which(board.cc) is None:
        pkg = board.raw.get("toolchain_package", "the board's cross compiler")
        raise TinycError(f"{board.cc} not found: board {board.name} needs the apt package(s) {pkg} "
                         "(`make setup` installs them)")


def _fmt(n: int) -> str:
    return f"{n:,} bytes ({n / 1024:.1f} KB)"


def _over(what: str, need: int, have: int, board: Board, parts: str) -> TinycError:
    return TinycError(
        f"the model does not fit {board.name}: it needs {_fmt(need)} of {what} ({parts}), "
        f"the board has {_fmt(have)}: over by {_fmt(need - have)}; "
        "prune or compress the model, or choose a larger board (`tinyc boards`)")


def uart_defines(board: Board) -> list[str]:
    u = board.raw.get("uart", {})
    if "base" not in u:
        raise TinycError(f"board file {board.path} has no [uart] base address")
    defs = [f"-DTINYC_UART_BASE=0x{int(u['base']):08x}u",
            f"-DTINYC_UART_CLOCK_HZ={int(u.get('clock_hz', board.clock_hz))}u",
            f"-DTINYC_BAUD={int(u.get('baud', 115200))}u"]
    if "rcc_enr" in u:
        defs += [f"-DTINYC_USART_RCC_ENR=0x{int(u['rcc_enr']):08x}u", f"-DTINYC_USART_RCC_BIT={int(u['rcc_bit'])}u"]
    if "gpio_base" in u:
        defs += [f"-DTINYC_USART_GPIO_BASE=0x{int(u['gpio_base']):08x}u",
                 f"-DTINYC_USART_GPIO_PORT_INDEX={int(u.get('gpio_port_index', 0))}u",
                 f"-DTINYC_USART_GPIO_TX_PIN={int(u['gpio_tx_pin'])}u",
                 f"-DTINYC_USART_GPIO_RX_PIN={int(u['gpio_rx_pin'])}u",
                 f"-DTINYC_USART_GPIO_AF={int(u.get('gpio_af', 7))}u"]
    return defs


def memory_layout(board: Board) -> dict:
    m = board.raw.get("memory", {})
    return {"flash_origin": int(m.get("flash_origin", 0)), "ram_origin": int(m.get("ram_origin", 0x20000000)),
            "stack_bytes": int(m.get("stack_bytes", 8192))}


def firmware_family(board: Board) -> str:
    """The folder of firmware/ a bare-metal board's start-up, UART and counter come from."""
    return board.raw.get("firmware", "cortexm")


def firmware_sources(board: Board) -> list[Path]:
    fw = firmware_dir()
    common = [fw / "common" / "tinyc_server.c"]
    if board.kind == "linux":
        return common + [fw / "linux" / "server_linux.c"]
    if firmware_family(board) == "aarch64":
        return common + aarch64_sources(board)
    driver = board.raw.get("uart", {}).get("driver", "cmsdk")
    if driver not in ("cmsdk", "stm32"):
        raise TinycError(f"board {board.name}: unknown UART driver '{driver}' (known: cmsdk, stm32)")
    counter = {"systick": "counter_systick.c", "dwt": "counter_dwt.c"}.get(board.cycle_source)
    if counter is None:
        raise TinycError(f"board {board.name}: cycle_source '{board.cycle_source}' is not one of systick, dwt")
    cm = fw / "cortexm"
    return common + [fw / "common" / "stack_paint.c", cm / "startup.c", cm / "main.c", cm / "exit.c",
                     cm / f"uart_{driver}.c", cm / counter]


def aarch64_sources(board: Board) -> list[Path]:
    a64 = firmware_dir() / "aarch64"
    driver = board.raw.get("uart", {}).get("driver", "pl011")
    if driver != "pl011":
        raise TinycError(f"board {board.name}: unknown UART driver '{driver}' for aarch64 (known: pl011)")
    if board.cycle_source != "pmccntr":
        raise TinycError(f"board {board.name}: cycle_source '{board.cycle_source}' is not pmccntr")
    return [firmware_dir() / "common" / "stack_paint.c", a64 / "startup.S", a64 / "platform.c", a64 / "libc.c",
            a64 / "uart_pl011.c", a64 / "counter_pmccntr.c"]


# ---------------------------------------------------------------------------- checks

def check_fits(manifest: Manifest, board: Board) -> None:
    """Refuse, before compiling anything, a model whose weights or arena alone exceed the board.
    The stack counted is the peak measured on this board by an earlier run when tinyc.json has
    it, else the board's stack reserve."""
    weights = int(manifest.weight_bytes or 0)
    arena = int(manifest.arena_bytes or 0)
    io = io_buffer_bytes(manifest)
    if board.flash_bytes and weights > board.flash_bytes:
        raise _over("flash", weights, board.flash_bytes, board, f"weights {weights:,}")
    if board.ram_bytes:
        known = (manifest.section("ram") or {}).get(board.name, {})
        measured = known.get("stack_bytes") if known.get("stack_measured") else None
        stack = measured if measured is not None else memory_layout(board)["stack_bytes"]
        need = arena + io + stack
        if need > board.ram_bytes:
            raise _over("RAM", need, board.ram_bytes, board,
                        f"arena {arena:,} + input/output buffers {io:,} + "
                        f"{'measured peak stack' if measured is not None else 'stack'} {stack:,}")


def check_objects(objs: list[Path], board: Board, size_tool: str) -> tuple[int, int]:
    """(flash, ram) the objects need, refusing them when over the board's sizes."""
    text = data = bss = 0
    for o in objs:
        t, d, b = section_sizes(o, size_tool)
        text, data, bss = text + t, data + d, bss + b
    stack = memory_layout(board)["stack_bytes"]
    flash, ram = text + data, data + bss + stack
    if board.flash_bytes and flash > board.flash_bytes:
        raise _over("flash", flash, board.flash_bytes, board, f"code and constants {text:,} + initialised data {data:,}")
    if board.ram_bytes and ram > board.ram_bytes:
        raise _over("RAM", ram, board.ram_bytes, board, f"data {data:,} + bss {bss:,} + stack {stack:,}")
    return flash, ram


# ---------------------------------------------------------------------------- generated files

def meta_json(manifest: Manifest, board: Board) -> bytes:
    meta = {
        "board": board.name,
        "tinyc": __version__,
        "model_hash": manifest.model_hash,
        "inputs": [{k: getattr(t, k) for k in ("name", "shape", "dtype", "scale", "zero_point")}
                   for t in manifest.inputs],
        "outputs": [{k: getattr(t, k) for k in ("name", "shape", "dtype", "scale", "zero_point")}
                    for t in manifest.outputs],
    }
    raw = json.dumps(meta, separators=(",", ":")).encode()
    if len(raw) > 60000:  # the HELLO field is 16 bits; drop the tensor details if huge
        raw = json.dumps({"board": board.name, "tinyc": __version__}).encode()
    return raw


def write_generated(bdir: Path, manifest: Manifest, board: Board) -> list[Path]:
    """tinyc_build_info.h, tinyc_meta.c and (mcu) link.ld in the build folder."""
    bdir.mkdir(parents=True, exist_ok=True)
    hz = board.clock_hz if board.cycle_source in ("systick", "dwt", "pmccntr") else 1_000_000_000
    info = (
        "/* Generated by tinyc for this build. Do not edit. */\n"
        "#ifndef TINYC_BUILD_INFO_H\n#define TINYC_BUILD_INFO_H\n#include <stdint.h>\n"
        f"#define TINYC_BOARD_NAME \"{board.name}\"\n"
        f"#define TINYC_CYCLE_SOURCE {CYCLE_SOURCE_CODES.get(board.cycle_source, 0)}u\n"
        f"#define TINYC_CYCLE_HZ {hz}u\n"
        "extern const uint8_t tinyc_meta_json[];\n"
        "extern const uint32_t tinyc_meta_json_len;\n"
        "#endif\n")
    meta = meta_json(manifest, board)
    rows = ",\n".join("    " + ", ".join(str(b) for b in meta[i:i + 24]) for i in range(0, len(meta), 24))
    meta_c = (
        "/* Generated by tinyc: the JSON the board sends in its HELLO reply. */\n"
        "#include \"tinyc_build_info.h\"\n"
        f"const uint8_t tinyc_meta_json[{max(len(meta), 1)}] = {{\n{rows or '    0'}\n}};\n"
        f"const uint32_t tinyc_meta_json_len = {len(meta)}u;\n")
    files = {"tinyc_build_info.h": info, "tinyc_meta.c": meta_c}
    if board.kind == "mcu":
        import jinja2
        tpl = (firmware_dir() / firmware_family(board) / "link.ld.j2").read_text()
        mem = memory_layout(board)
        files["link.ld"] = jinja2.Template(tpl, keep_trailing_newline=True).render(
            board=board.name, flash_bytes=board.flash_bytes, ram_bytes=board.ram_bytes, **mem)
    out = []
    for name, text in files.items():
        p = bdir / name
        if not p.exists() or p.read_text() != text:  # unchanged files are left alone
            p.write_text(text)
        out.append(p)
    return out


# ---------------------------------------------------------------------------- build

def build_firmware(outdir: Path, board: Board, force: bool = False, manifest: Manifest | None = None) -> BuildResult:
    outdir = Path(outdir)
    if board.kind not in ("mcu", "linux"):
        raise TinycError(f"board {board.name} (kind {board.kind}) is not built by tinyc.build.firmware")
    manifest = manifest if manifest is not None else load_manifest(outdir)
    check_fits(manifest, board)
    require_toolchain(board)
    tools = toolchain_tools(board)
    bdir = build_dir(outdir, board)
    generated = write_generated(bdir, manifest, board)
    binary = binary_path(outdir, board)
    sources = firmware_sources(board)
    fw = firmware_dir()
    libs = list(board.raw.get("libs", ["-lm"]))
    inputs = (generated_files(outdir) + sources + [fw / "common" / "tinyc_protocol.h"] + generated
              + ([board.path] if board.path else []))
    cflags = [*STRICT_CFLAGS, *board.cflags, f"-I{outdir}", f"-I{bdir}", f"-I{fw / 'common'}"]
    if board.kind == "mcu":
        cflags += MCU_CFLAGS + uart_defines(board)
        if board.runner == "qemu-system":
            cflags.append("-DTINYC_SEMIHOSTING")
    model_objs = [bdir / (Path(s).stem + ".o") for s in MODEL_SOURCES]
    fw_objs = [bdir / ("fw_" + s.stem + ".o") for s in sources] + [bdir / "tinyc_meta.o"]
    fp = fingerprint(inputs, [tools["cc"], *cflags, *board.ldflags])
    fresh = not force and is_fresh(binary, fp) and all(o.is_file() for o in model_objs)
    if not fresh:
        forget_build(binary)
        for src, obj in zip(MODEL_SOURCES, model_objs):
            run_tool([tools["cc"], *cflags, "-DTINYC_LAYER_HOOKS", "-c", str(outdir / src), "-o", str(obj)],
                 f"compiling {src} for {board.name}")
        for src, obj in zip([*sources, bdir / "tinyc_meta.c"], fw_objs):
            run_tool([tools["cc"], *cflags, "-c", str(src), "-o", str(obj)], f"compiling {src.name} for {board.name}")
        objs = model_objs + fw_objs
        if board.kind == "mcu":
            check_objects(objs, board, tools["size"])
            link = [tools["cc"], *cflags, "-nostartfiles", f"-T{bdir / 'link.ld'}", "-Wl,--gc-sections",
                    f"-Wl,-Map={bdir / 'firmware.map'}", *board.ldflags, "-o", str(binary.with_suffix(".tmp")),
                    *map(str, objs), *libs]
        else:
            link = [tools["cc"], *cflags, *board.ldflags, "-o", str(binary.with_suffix(".tmp")), *map(str, objs), *libs]
        try:
            run_tool(link, f"linking the firmware for {board.name}")
        except TinycError as exc:
            raise TinycError(f"{exc} (the linker script holds the board's real flash/RAM sizes)") from None
        binary.with_suffix(".tmp").replace(binary)
        if board.kind == "mcu":
            run_tool([tools["objcopy"], "-O", "binary", str(binary), str(binary.with_suffix(".bin"))], "objcopy")
        record_build(binary, fp)
    result = model_result(binary, model_objs[0], model_objs[1], tools["size"])
    result.rebuilt = not fresh
    return result


def image_sizes(binary: Path, board: Board) -> dict:
    """flash and RAM use of a linked firmware (text+data, data+bss)."""
    t, d, b = section_sizes(binary, toolchain_tools(board)["size"])
    return {"flash": t + d, "ram": d + b}
