"""Board files, `tinyc boards`, cross builds and the size checks."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from click.testing import CliRunner

from tinyc.boards import board_names, load_board, runner_status
from tinyc.build import build
from tinyc.cli import main as cli
from tinyc.errors import TinycError
from tinyc.build.firmware import build_firmware, image_sizes
from tinyc.frontend.tflite import load_tflite
from tinyc.convert import convert
from tinyc.outdir import load_manifest

FIRMWARE_BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547", "netduinoplus2", "nucleo-f446re", "rpi4"]


def test_every_board_file_loads_with_what_it_needs():
    assert set(FIRMWARE_BOARDS + ["host"]) <= set(board_names())
    for name in FIRMWARE_BOARDS:
        b = load_board(name)
        assert b.name == name and b.kind in ("mcu", "linux") and b.cc and b.cflags
        assert b.clock_hz > 0 and b.raw.get("toolchain_package")
        if b.kind == "mcu":
            assert b.flash_bytes > 0 and b.ram_bytes > 0
            assert b.cycle_source in ("systick", "dwt")
            assert b.raw["uart"]["driver"] in ("cmsdk", "stm32") and b.raw["uart"]["base"] > 0
    nd = load_board("netduinoplus2")
    assert (nd.flash_bytes, nd.ram_bytes) == (1024 * 1024, 128 * 1024)   # the real STM32F405
    assert load_board("mps2-an386").raw["qemu"]["machine"] == "mps2-an386"
    assert load_board("nucleo-f446re").raw["serial"]["port"] == "auto"   # the ST-LINK VCP, by USB id


def test_runner_status_matches_installed_tools():
    import shutil
    for name in FIRMWARE_BOARDS:
        b = load_board(name)
        ok, why = runner_status(b)
        if b.runner == "qemu-system":
            assert ok == bool(shutil.which("qemu-system-arm") and shutil.which(b.cc)), why
        if b.runner == "openocd":
            assert ok == bool(shutil.which("openocd") or shutil.which("st-flash")), why
            assert "netduinoplus2" in why   # says what to test it with here
        if b.runner == "pyocd":   # pyOCD is a Python dependency: always there
            assert ok and why.startswith("real board via pyocd") and "netduinoplus2" in why, why


def test_boards_command_lists_memory_and_availability():
    res = CliRunner().invoke(cli, ["boards"])
    assert res.exit_code == 0, res.output
    lines = {l.split()[0]: l for l in res.output.splitlines()[1:] if l.strip()}
    assert "1 MB" in lines["netduinoplus2"] and "128 KB" in lines["netduinoplus2"] and "168 MHz" in lines["netduinoplus2"]
    assert "4 MB" in lines["mps2-an386"] and "25 MHz" in lines["mps2-an386"]
    for name in FIRMWARE_BOARDS:
        ok, _ = runner_status(load_board(name))
        assert re.search(rf"\b{'yes' if ok else 'no'}\b", lines[name]), lines[name]
    data = json.loads(CliRunner().invoke(cli, ["boards", "--json"]).output)
    assert {d["name"] for d in data} >= set(FIRMWARE_BOARDS)


@pytest.fixture(scope="module")
def ad01(tmp_path_factory, mlperf_dir):
    out = tmp_path_factory.mktemp("boards") / "ad01"
    convert(mlperf_dir / "ad01_int8.tflite", out)
    return out


def _constant_bytes(tflite_path) -> int:
    """Bytes of the model's constant tensors, read from the flatbuffer (weights + biases)."""
    from ai_edge_litert import schema_py_generated as schema
    m = schema.ModelT.InitFromPackedBuf(tflite_path.read_bytes(), 0)
    g = m.subgraphs[0]
    total = 0
    for t in g.tensors:
        buf = m.buffers[t.buffer]
        if buf.data is not None and len(buf.data):
            total += len(buf.data)
    return total


def test_linker_script_has_the_board_sizes(ad01):
    b = load_board("netduinoplus2")
    res = build_firmware(ad01, b)
    ld = (res.binary.parent / "link.ld").read_text()
    assert "ORIGIN = 0x08000000, LENGTH = 1048576" in ld
    assert "ORIGIN = 0x20000000, LENGTH = 131072" in ld
    sizes = image_sizes(res.binary, b)
    assert sizes["flash"] >= _constant_bytes(ad01 / "model.tflite") and sizes["flash"] <= b.flash_bytes
    # the vector table's first word is the initial stack pointer: the top of the 128 KB RAM
    bin_data = res.binary.with_suffix(".bin").read_bytes()
    assert int.from_bytes(bin_data[:4], "little") == 0x20000000 + 128 * 1024


def test_too_large_for_flash_is_refused_before_building(ad01):
    small = dataclasses.replace(load_board("netduinoplus2"), name="tiny-m4", flash_bytes=64 * 1024)
    weights = _constant_bytes(ad01 / "model.tflite")
    with pytest.raises(TinycError) as exc:
        build_firmware(ad01, small)
    msg = str(exc.value)
    assert "does not fit tiny-m4" in msg and "flash" in msg
    nums = [int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) bytes", msg)]
    need, have, over = nums[0], nums[1], nums[2]
    assert have == 64 * 1024 and over == need - have
    assert need >= weights
    assert not (ad01 / "build" / "tiny-m4" / "model.o").exists()   # refused before compiling


def test_too_large_after_compiling_is_refused_before_linking(ad01):
    # weights alone fit, weights + code + firmware do not: the object-size check says so
    # (the generated constants: re-laid-out weights and requantization records)
    weights = load_manifest(ad01).weight_bytes
    small = dataclasses.replace(load_board("mps2-an386"), name="almost-m4", flash_bytes=weights + 1024)
    with pytest.raises(TinycError) as exc:
        build_firmware(ad01, small)
    msg = str(exc.value)
    assert "does not fit almost-m4" in msg and "over by" in msg
    assert (ad01 / "build" / "almost-m4" / "model.o").exists()
    assert not (ad01 / "build" / "almost-m4" / "firmware.elf").exists()


def test_too_little_ram_is_refused_with_numbers(ad01):
    small = dataclasses.replace(load_board("netduinoplus2"), name="tiny-ram", ram_bytes=4 * 1024)
    with pytest.raises(TinycError) as exc:
        build_firmware(ad01, small)
    msg = str(exc.value)
    assert "RAM" in msg and "4,096 bytes" in msg and "stack" in msg


def test_missing_toolchain_names_the_package(ad01):
    b = dataclasses.replace(load_board("mps2-an386"), name="no-gcc", cc="arm-none-eabi-gcc-not-installed")
    with pytest.raises(TinycError) as exc:
        build_firmware(ad01, b)
    assert "gcc-arm-none-eabi" in str(exc.value) and "make setup" in str(exc.value)


@pytest.mark.parametrize("name", FIRMWARE_BOARDS)
def test_cross_build_every_board(ad01, name):
    """Every firmware board builds ad01 cleanly (-Wall -Wextra -Werror -pedantic)."""
    b = load_board(name)
    res = build(ad01, b)
    assert res.binary.exists()
    head = res.binary.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    # ELF e_machine: 183 = AArch64, 40 = 32-bit Arm
    assert int.from_bytes(head[18:20], "little") == (183 if b.kind == "linux" else 40)
    if b.kind == "mcu":
        s = image_sizes(res.binary, b)
        assert s["flash"] <= b.flash_bytes and s["ram"] <= b.ram_bytes


def test_build_command_reports_sizes(ad01):
    res = CliRunner().invoke(cli, ["build", str(ad01), "--board", "netduinoplus2"])
    assert res.exit_code == 0, res.output
    assert "of 1,048,576 B" in res.output and "of 131,072 B" in res.output


def test_flash_command_on_an_emulated_board_says_so(ad01):
    res = CliRunner().invoke(cli, ["flash", str(ad01), "--board", "mps2-an386"])
    assert res.exit_code == 0 and "emulated" in res.output


def test_flash_rpi4_without_host_asks_for_it(ad01):
    res = CliRunner().invoke(cli, ["flash", str(ad01), "--board", "rpi4"])
    assert res.exit_code != 0 and "--host" in res.output


def test_flash_real_board_runs_the_flashing_tool(ad01, tmp_path, monkeypatch):
    """nucleo-f446re: the flashing tool gets the built image (a stand-in st-flash records
    its arguments; no board is attached here)."""
    import os
    from tinyc.flashing import flash_firmware
    log = tmp_path / "args.txt"
    tool = tmp_path / "st-flash"
    tool.write_text(f"#!/bin/sh\necho \"$@\" > {log}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    b = load_board("nucleo-f446re")
    res = build(ad01, b)
    assert flash_firmware(b, res.binary, tool="st-flash") == "st-flash"
    args = log.read_text().split()
    assert args[-2:] == [str(res.binary.with_suffix(".bin")), "0x08000000"]
    bin_data = res.binary.with_suffix(".bin").read_bytes()
    assert int.from_bytes(bin_data[:4], "little") == 0x20000000 + 128 * 1024   # initial SP
    assert int.from_bytes(bin_data[4:8], "little") & 1 == 1                      # Thumb reset vector
    assert 0x08000000 < int.from_bytes(bin_data[4:8], "little") < 0x08000000 + len(bin_data)
