"""Real boards without the hardware: what can be checked here is checked for real.

- `tinyc probes` and `tinyc flash` run pyOCD's own probe discovery on this machine (no
  probe is connected) and say so in one line;
- the command lines that would flash (`--dry-run`) and the pyOCD target names of the boards;
- pyOCD's API with a probe class plugged into its aggregator (pyOCD's plugin table): listed
  by `tinyc probes`, chosen by --probe, and its failure to open reported in one line;
- `--port auto`: the choice of a serial port by USB id, over port lists as pyserial makes them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tinyc.boards import load_all_boards, load_board
from tinyc.build import build
from tinyc.cli import main as cli
from tinyc.convert import convert
from tinyc.errors import TinycError
from tinyc.flashing import flash_firmware, flash_plan, pyocd_knows
from tinyc.probes import PROBE_USB_IDS, SerialPort, pick_port, resolve_port, serial_ports


def _tinyc(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tinyc.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ad01(tmp_path_factory, mlperf_dir):
    out = tmp_path_factory.mktemp("flash") / "ad01"
    convert(mlperf_dir / "ad01_int8.tflite", out)
    return out


@pytest.fixture(scope="module")
def nucleo_elf(ad01):
    return build(ad01, load_board("nucleo-f446re")).binary


# ------------------------------------------------------------------ no hardware: the real calls

def test_probes_without_hardware_says_none_connected():
    proc = _tinyc("probes")
    assert proc.returncode == 0, proc.stderr
    assert "debug probes: none connected (pyOCD looked for ST-LINK, CMSIS-DAP and J-Link on USB)" in proc.stdout
    assert "USB serial ports: none connected" in proc.stdout


def test_flash_without_probe_fails_in_one_line(ad01, nucleo_elf):
    proc = _tinyc("flash", str(ad01), "--board", "nucleo-f446re")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tinyc: error: no debug probe connected: pyOCD looked for ST-LINK, CMSIS-DAP "
                               "and J-Link probes on USB to flash nucleo-f446re (target stm32f446retx)")


def test_port_auto_without_hardware_names_what_it_looked_for():
    board = load_board("nucleo-f446re")
    with pytest.raises(TinycError) as exc:
        resolve_port(board, None)
    msg = str(exc.value)
    assert msg.startswith("no serial port of a ST-LINK VCP (USB 0483:374b") and "give --port" in msg
    assert resolve_port(board, "/dev/ttyUSB7") == ("/dev/ttyUSB7", None)   # a port given is taken as is


# ------------------------------------------------------------------ command lines and targets

def test_dry_run_prints_the_pyocd_command(ad01, nucleo_elf):
    proc = _tinyc("flash", str(ad01), "--board", "nucleo-f446re", "--dry-run", "--probe", "066DFF303435")
    assert proc.returncode == 0, proc.stderr
    assert shlex.split(proc.stdout) == ["pyocd", "flash", "--target", "stm32f446retx", "--uid", "066DFF303435",
                                        str(nucleo_elf)]


def test_command_lines_of_openocd_and_st_flash(nucleo_elf):
    b = load_board("nucleo-f446re")
    ocd = flash_plan(b, nucleo_elf, tool="openocd", probe="0670FF")
    assert ocd[:5] == ["openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg"]
    assert ocd[5:] == ["-c", "adapter serial 0670FF", "-c", f"program {nucleo_elf} verify reset exit"]
    st = flash_plan(b, nucleo_elf, tool="st-flash", probe="0670FF")
    assert st == ["st-flash", "--serial", "0670FF", "--reset", "write", str(nucleo_elf.with_suffix(".bin")),
                  "0x08000000"]
    assert flash_plan(b, nucleo_elf) == ["pyocd", "flash", "--target", "stm32f446retx", str(nucleo_elf)]


def test_every_cortex_m_board_names_a_pyocd_target():
    """Built-in targets must be pyOCD's; CMSIS-Pack targets name their pack part (not
    installable here: the pack index is not reachable) and use pyOCD's part-number form."""
    for b in load_all_boards():
        if b.kind != "mcu" or not b.raw.get("target", {}).get("isa", "").endswith(("-m", "-m.main")):
            continue   # pyOCD drives Cortex-M parts (a72-virt is a bare-metal Cortex-A)
        cfg = b.raw.get("pyocd", {})
        assert cfg.get("target"), b.name
        if "pack" in cfg:
            assert cfg["target"].startswith(cfg["pack"]), (b.name, cfg)
        else:
            assert pyocd_knows(cfg["target"]), (b.name, cfg["target"])
        assert b.raw.get("probe", {}).get("kind") in PROBE_USB_IDS


def test_pack_target_missing_is_explained(nucleo_elf, monkeypatch, fake_probes):
    fake_probes("0670FF")
    with pytest.raises(TinycError, match=r"pyOCD does not know target 'stm32f446retx' of nucleo-f446re: "
                                         r"install its CMSIS-Pack with `pyocd pack install stm32f446re`"):
        flash_firmware(load_board("nucleo-f446re"), nucleo_elf)


# ------------------------------------------------------------------ pyOCD's API with a plugged-in probe

@pytest.fixture
def fake_probes(monkeypatch):
    """fake_probes(*ids): put a probe class into pyOCD's probe plugin table that reports
    these probes as connected; opening one fails as an unplugged USB device does."""
    from pyocd.core import exceptions
    from pyocd.probe import aggregator
    from pyocd.probe.debug_probe import DebugProbe

    def install(*ids):
        class PluggedProbe(DebugProbe):
            @classmethod
            def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
                return [cls(i) for i in ids]

            @classmethod
            def get_probe_with_id(cls, unique_id, is_explicit=False):
                return next((cls(i) for i in ids if i == unique_id), None)

            def __init__(self, uid):
                super().__init__()
                self._uid = uid

            @property
            def description(self):
                return "Test Probe CMSIS-DAP"

            @property
            def vendor_name(self):
                return "Test"

            @property
            def product_name(self):
                return "Probe CMSIS-DAP"

            @property
            def unique_id(self):
                return self._uid

            def open(self):
                raise exceptions.ProbeError("USB device disconnected")

        monkeypatch.setattr(aggregator, "PROBE_CLASSES", {"plugged": PluggedProbe})
    return install


def test_probes_lists_a_probe_pyocd_finds(fake_probes):
    fake_probes("0670FF51")
    res = CliRunner().invoke(cli, ["probes"])
    assert res.exit_code == 0, res.output
    assert "0670FF51" in res.output and "Test Probe CMSIS-DAP" in res.output


def test_flash_through_pyocd_opens_the_chosen_probe(ad01, fake_probes):
    fake_probes("AAA1", "BBB2")
    board = load_board("mps2-an386")   # pyOCD's built-in cortex_m target
    elf = build(ad01, board).binary
    with pytest.raises(TinycError, match=r"2 debug probes connected: AAA1 \(Test Probe CMSIS-DAP\), BBB2 .*--probe ID"):
        flash_firmware(board, elf)
    with pytest.raises(TinycError) as exc:
        flash_firmware(board, elf, probe="BBB2")
    assert str(exc.value) == "pyOCD failed to flash mps2-an386 through probe BBB2: USB device disconnected"
    with pytest.raises(TinycError, match=r"no debug probe with id CCC3 connected"):
        flash_firmware(board, elf, probe="CCC3")


# ------------------------------------------------------------------ --port auto

def _port(dev, vid, pid, serial=None):
    return SerialPort(dev, vid, pid, serial, "")


def test_port_auto_picks_the_stlink_vcp():
    b = load_board("nucleo-f446re")
    ports = [_port("/dev/ttyS0", None, None), _port("/dev/ttyACM0", 0x0D28, 0x0204, "DAP1"),
             _port("/dev/ttyACM1", 0x0483, 0x374B, "0670FF51")]
    dev, why = pick_port(b, ports)
    assert dev == "/dev/ttyACM1" and why == "/dev/ttyACM1: ST-LINK VCP 0483:374b, serial 0670FF51"


def test_port_auto_refuses_several_and_takes_the_probe_id():
    b = load_board("nucleo-f446re")
    ports = [_port("/dev/ttyACM0", 0x0483, 0x374B, "0670FF51"), _port("/dev/ttyACM1", 0x0483, 0x374E, "0033AB")]
    with pytest.raises(TinycError, match=r"2 serial ports of a ST-LINK VCP .*/dev/ttyACM0 \(serial 0670FF51\), "
                                         r"/dev/ttyACM1 \(serial 0033AB\); choose one with --port"):
        pick_port(b, ports)
    assert pick_port(b, ports, probe_id="0033ab")[0] == "/dev/ttyACM1"
    with pytest.raises(TinycError, match=r"no serial port of a ST-LINK VCP .* with serial number 99 is connected"):
        pick_port(b, ports, probe_id="99")


def test_port_auto_for_a_cmsis_dap_board():
    b = load_board("mps2-an386")
    ports = [_port("/dev/ttyACM0", 0x0483, 0x374B), _port("/dev/ttyACM3", 0x0D28, 0x0204, "0240000")]
    assert pick_port(b, ports)[0] == "/dev/ttyACM3"


def test_serial_ports_reads_this_machine():
    ports = serial_ports()
    assert all(p.device.startswith("/dev/") for p in ports)
