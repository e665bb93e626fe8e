"""`tinyc boards`, `tinyc build`, `tinyc flash`: the board commands."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from tinyc.boards import DEFAULT_BOARD, load_all_boards, load_board, runner_status
from tinyc.build import build, build_and_record
from tinyc.build.ram import ram_lines
from tinyc.build.firmware import image_sizes
from tinyc.errors import TinycError
from tinyc.outdir import load_manifest
from tinyc.runners.linux import deploy_ssh
from tinyc.flashing import TOOLS, flash_firmware, flash_plan
from tinyc.probes import debug_probes, resolve_port, serial_ports
from tinyc.runners.serial_board import open_session


def _size(n: int) -> str:
    if not n:
        return "-"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    return f"{n / 1024:g} KB"


def _clock(hz: int) -> str:
    return f"{hz / 1e6:g} MHz" if hz else "-"


@click.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def boards_cmd(as_json):
    """List the boards: memory, clock, and whether they can run on this machine."""
    rows = []
    for b in load_all_boards():
        ok, why = runner_status(b)
        rows.append({"name": b.name, "kind": b.kind, "flash_bytes": b.flash_bytes, "ram_bytes": b.ram_bytes,
                     "clock_hz": b.clock_hz, "runner": b.runner, "cycle_source": b.cycle_source,
                     "available": ok, "how": why, "description": b.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'board':15s} {'kind':5s} {'flash':>7s} {'RAM':>7s} {'clock':>9s}  {'runner':11s} {'here':4s}  how")
    for r in rows:
        click.echo(f"{r['name']:15s} {r['kind']:5s} {_size(r['flash_bytes']):>7s} {_size(r['ram_bytes']):>7s} "
                   f"{_clock(r['clock_hz']):>9s}  {r['runner']:11s} {'yes' if r['available'] else 'no':4s}  {r['how']}")


def _build(outdir: Path, board_name: str | None, force: bool):
    manifest = load_manifest(outdir)
    board = load_board(board_name or manifest.board or DEFAULT_BOARD)
    return board, build(outdir, board, force=force, manifest=manifest)


@click.command("build")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to build for (default: the one OUTDIR was converted for).")
@click.option("--force", is_flag=True, help="Rebuild even when the build is up to date.")
def build_cmd(outdir, board, force):
    """Compile OUTDIR for a board (firmware for microcontrollers). Flash and RAM are checked
    against the board before linking."""
    manifest = load_manifest(outdir)
    b = load_board(board or manifest.board or DEFAULT_BOARD)
    result, manifest = build_and_record(outdir, b, manifest, force=force)
    click.echo(f"{'built' if result.rebuilt else 'up to date:'} {result.binary}")
    click.echo(f"  model code {result.code_bytes:,} B, weights {result.weight_bytes:,} B, "
               f"model RAM {result.ram_bytes if result.ram_bytes is not None else '?':,} B")
    if b.kind == "mcu":
        s = image_sizes(result.binary, b)
        click.echo(f"  firmware   flash {s['flash']:,} of {b.flash_bytes:,} B ({100 * s['flash'] / b.flash_bytes:.1f}%), "
                   f"RAM {s['ram']:,} of {b.ram_bytes:,} B incl. stack ({100 * s['ram'] / b.ram_bytes:.1f}%)")
    for line in ram_lines(manifest.section("ram")[b.name]):
        click.echo(f"  model {line}")


@click.command("flash")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to flash (default: the one OUTDIR was converted for).")
@click.option("--port", default=None, help="Serial port of the board, checked with a handshake after flashing "
              "(auto: the probe's own port).")
@click.option("--host", default=None, help="rpi4: ssh destination (user@host) to copy the server to.")
@click.option("--tool", type=click.Choice(TOOLS), default=None,
              help="Flashing tool (default: pyocd for boards that name a pyOCD target).")
@click.option("--probe", default=None, help="Debug probe to use: its unique id / serial number (see `tinyc probes`).")
@click.option("--dry-run", is_flag=True, help="Print the command line that would flash the board, and stop.")
def flash_cmd(outdir, board, port, host, tool, probe, dry_run):
    """Build (when stale) and put the firmware on a real board: pyOCD (or openocd / st-flash)
    for microcontrollers, scp for a Raspberry Pi (--host)."""
    b, result = _build(outdir, board, False)
    if b.runner == "qemu-system":
        click.echo(f"{b.name} is emulated: nothing to flash; `tinyc run/validate {outdir} --board {b.name}` "
                   "starts it in QEMU")
        return
    if b.kind == "linux":
        if not host:
            raise TinycError(f"give --host user@pi to copy the server to the board ({result.binary} is built)")
        remote = deploy_ssh(result.binary, host, b.raw.get("ssh", {}).get("path", "~/tinyc_server"))
        click.echo(f"copied {result.binary.name} to {host}:{remote}; start it there with "
                   f"`{remote} --port /dev/ttyAMA0` (or --pty / stdin-stdout) and validate with --port")
        return
    if b.kind != "mcu":
        raise TinycError(f"board {b.name} runs locally: nothing to flash")
    if dry_run:
        click.echo(shlex.join(flash_plan(b, result.binary, tool=tool, probe=probe)))
        return
    used = flash_firmware(b, result.binary, tool=tool, probe=probe)
    click.echo(f"flashed {result.binary} to {b.name} with {used}")
    try:
        port, note = resolve_port(b, port, probe)
    except TinycError as exc:   # flashed all the same: say why there is no handshake
        click.echo(f"no handshake: {exc}")
        return
    if note:
        click.echo(note)
    if port:
        with open_session(b, outdir, port=port) as s:
            click.echo(f"handshake OK on {s.link.name}: model {s.info.model_hash}")


@click.command("probes")
def probes_cmd():
    """List the debug probes (pyOCD: ST-LINK, CMSIS-DAP, J-Link) and serial ports connected."""
    _listing("debug probes", [f"{p.unique_id:26s} {p.description}" for p in debug_probes()],
             "none connected (pyOCD looked for ST-LINK, CMSIS-DAP and J-Link on USB)")
    _listing("USB serial ports", [f"{p.device:15s} {p.usb_id}  serial {p.serial_number or '-':24s} {p.description}"
                                  for p in serial_ports() if p.vid is not None], "none connected")


def _listing(title: str, rows: list[str], none: str) -> None:
    click.echo(f"{title}:" if rows else f"{title}: {none}")
    for r in rows:
        click.echo(f"  {r}")


COMMANDS = [boards_cmd, build_cmd, flash_cmd, probes_cmd]
