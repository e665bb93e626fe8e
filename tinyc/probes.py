"""What is plugged in: debug probes (through pyOCD) and serial ports (through pyserial),
and which serial port is a board's.

A board TOML names its probe (`[probe] kind = "stlink"`); the probe's USB vendor/product
ids then say which serial port is its virtual COM port (ST-LINK VCP, a CMSIS-DAP's CDC
port, a J-Link's VCOM). `--port auto` picks the one port that matches, and refuses when
there is none or more than one (then `--port` or `--probe` must say which).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyc.boards import Board
from tinyc.errors import TinycError

# USB (vid, pid) of the probes' serial ports; the pids of probes without a VCP are left out.
PROBE_USB_IDS = {
    "stlink": [(0x0483, 0x374B), (0x0483, 0x374A), (0x0483, 0x3752),                    # ST-LINK/V2-1
               (0x0483, 0x374E), (0x0483, 0x374F), (0x0483, 0x3753), (0x0483, 0x3754),  # ST-LINK/V3
               (0x0483, 0x3757)],
    "cmsis-dap": [(0x0D28, 0x0204),      # Arm DAPLink (mbed boards, NXP FRDM, micro:bit)
                  (0x2E8A, 0x000C),      # Raspberry Pi Debug Probe
                  (0x1FC9, 0x0143)],     # NXP MCU-Link
    "jlink": [(0x1366, 0x0105), (0x1366, 0x1015), (0x1366, 0x1024), (0x1366, 0x1051)],
}
PROBE_NAMES = {"stlink": "ST-LINK VCP", "cmsis-dap": "CMSIS-DAP", "jlink": "J-Link VCOM"}


@dataclass
class SerialPort:
    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str = ""

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else "-"


@dataclass
class DebugProbe:
    unique_id: str
    description: str
    vendor: str = ""


def serial_ports() -> list[SerialPort]:
    """The serial ports of this machine (USB ones with their ids)."""
    from serial.tools import list_ports

    return [SerialPort(p.device, p.vid, p.pid, p.serial_number, p.description or "")
            for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def debug_probes() -> list[DebugProbe]:
    """The debug probes pyOCD finds (ST-LINK, CMSIS-DAP, J-Link); never waits for one."""
    try:
        from pyocd.core.helpers import ConnectHelper
    except ImportError:
        raise TinycError("pyOCD is not installed: `make setup` (or pip install pyocd) installs it") from None
    return [DebugProbe(p.unique_id, p.description, getattr(p, "vendor_name", "") or "")
            for p in ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)]


def board_probe_kind(board: Board) -> str | None:
    return board.raw.get("probe", {}).get("kind")


def usb_ids(board: Board) -> list[tuple[int, int]]:
    kind = board_probe_kind(board)
    if kind is None:
        return []
    if kind not in PROBE_USB_IDS:
        raise TinycError(f"board file {board.path} names probe kind '{kind}'; known: {', '.join(PROBE_USB_IDS)}")
    return PROBE_USB_IDS[kind]


def pick_port(board: Board, ports: list[SerialPort], probe_id: str | None = None) -> tuple[str, str]:
    """(device, why) of the one serial port that is board's probe's; TinycError when none or several.

    With `probe_id`, the port must also carry that USB serial number (an ST-LINK's VCP has
    the probe's serial number, so the port and the flashed board are the same one)."""
    ids = usb_ids(board)
    kind = board_probe_kind(board)
    if not ids:
        raise TinycError(f"board {board.name} names no debug probe ([probe] kind in {board.path}): "
                         "give --port")
    wanted = ", ".join(f"{v:04x}:{p:04x}" for v, p in ids)
    what = f"{PROBE_NAMES[kind]} (USB {wanted})"
    found = [p for p in ports if (p.vid, p.pid) in ids]
    if probe_id:
        found = [p for p in found if p.serial_number and probe_id.lower() in p.serial_number.lower()]
        what += f" with serial number {probe_id}"
    if not found:
        raise TinycError(f"no serial port of a {what} is connected ({len(ports)} ports seen): "
                         f"plug in the {board.name} or give --port")
    if len(found) > 1:
        listed = ", ".join(f"{p.device} (serial {p.serial_number or '?'})" for p in found)
        raise TinycError(f"{len(found)} serial ports of a {what}: {listed}; choose one with --port "
                         "or --probe SERIAL, or use them all with --port P1,P2 --jobs N")
    p = found[0]
    return p.device, f"{p.device}: {PROBE_NAMES[kind]} {p.usb_id}, serial {p.serial_number or '?'}"


def resolve_port(board: Board, port: str | None, probe_id: str | None = None) -> tuple[str | None, str | None]:
    """--port as given, or for `auto` (a real board's default) the probe's port: (port, why chosen)."""
    port = port or board.raw.get("serial", {}).get("port")
    if port != "auto":
        return port, None
    device, why = pick_port(board, serial_ports(), probe_id)
    return device, f"serial port auto: {why}"
