"""The tinyc command line: parses arguments, calls the library, prints. Nothing else.

Errors from bad input are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from tinyc import __version__
from tinyc.errors import TinycError

DEFAULT_BOARD = "host"


class TinycGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TinycError as exc:
            click.echo(f"tinyc: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("tinyc: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, the traceback only on request
            if os.environ.get("TINYC_DEBUG"):
                traceback.print_exc()
            click.echo(f"tinyc: internal error: {type(exc).__name__}: {exc} "
                       "(set TINYC_DEBUG=1 for the traceback and please report it)", err=True)
            sys.exit(70)


@click.group(cls=TinycGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyc")
def main():
    """tinyc: trained Keras/TFLite models to bit-exact fixed-point C for microcontrollers,
    validated on the board over a serial link."""


def _fmt_bytes(n) -> str:
    if n is None:
        return "-"
    return f"{n:,} B" if n < 10 * 1024 else f"{n / 1024:,.1f} KiB"


# ----------------------------------------------------------------------------- convert
@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path), help="Folder for the generated sources.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, help="Target board (see `tinyc boards`).")
@click.option("--calib", type=click.Path(exists=True, path_type=Path), help="Calibration data for float/Keras models: .npy samples or .npz with x.")
@click.option("--calib-random", type=int, help="Calibrate with N random samples (smoke tests only: scales are not trustworthy).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales instead of per-channel.")
@click.option("--io", "io_type", type=click.Choice(["int8", "float"]), default="int8", show_default=True, help="I/O type of the generated C.")
@click.option("--eval", "eval_data", type=click.Path(exists=True, path_type=Path), help=".npz with x and y: accuracy of float, int8 reference and generated C.")
@click.option("--prune", "prune", type=float, default=None, help="Magnitude-prune this fraction of the weights, globally over the layers (e.g. 0.9).")
@click.option("--prune-layer", "prune_layer", multiple=True, metavar="NAME=S", help="Prune layer NAME to sparsity S (repeatable; overrides --prune for it).")
@click.option("--prune-channels", type=float, default=None, help="Remove this fraction of output channels/neurons per layer (smallest L1), shrinking the model.")
@click.option("--prune-exclude-first-last/--no-prune-exclude-first-last", default=True, show_default=True, help="Leave the first and last weight layers out of --prune.")
@click.option("--train", "train", type=click.Path(exists=True, path_type=Path), help="Keras models: .npz with x, y to prune gradually while fine-tuning.")
@click.option("--rewind", is_flag=True, help="With --train: rewind surviving weights to an early checkpoint once the masks are final.")
@click.option("--weights", "weights_mode", type=click.Choice(["auto", "raw", "sparse", "huffman"]), default="raw", show_default=True,
              help="Weight encoding: raw int8, sparse (values + gaps), Huffman (+ Huffman gaps when sparse), or the smallest per tensor.")
def convert(model, outdir, board, calib, calib_random, per_tensor, io_type, eval_data, prune, prune_layer,
            prune_channels, prune_exclude_first_last, train, rewind, weights_mode):
    """Compile MODEL (.tflite, .keras, .h5 or SavedModel) into C sources in OUTDIR."""
    from tinyc.boards import load_board

    load_board(board)  # an unknown board fails before any work
    from tinyc import convert_cli
    from tinyc.compress import CompressOptions
    from tinyc.passes.prune import PruneOptions, check_fraction, parse_layer_option

    popts = PruneOptions(
        sparsity=check_fraction(prune, "--prune") if prune is not None else None,
        per_layer=dict(parse_layer_option(t) for t in prune_layer),
        channels=check_fraction(prune_channels, "--prune-channels") if prune_channels is not None else None,
        exclude_first_last=prune_exclude_first_last)
    result = convert_cli.convert_any(model, outdir, board, calib=calib, calib_random=calib_random,
                                     per_tensor=per_tensor, io=io_type, eval_data=eval_data,
                                     echo=lambda s: click.echo(s, err=True),
                                     compress_options=CompressOptions(popts, weights_mode), train=train, rewind=rewind)
    m = result.manifest
    click.echo(f"wrote {outdir}: {len(m['layers'])} layers ({', '.join(m['ops'])})")
    for kind, ios in (("input", m["inputs"]), ("output", m["outputs"])):
        for t in ios:
            q = f" scale {t['scale']:.6g} zp {t['zero_point']}" if t["scale"] is not None else ""
            click.echo(f"  {kind:6s} {t['name']}: {t['shape']} {t['dtype']}{q}")
    click.echo(f"  arena_bytes  {m['arena_bytes']:>10,}   (intermediate tensors; I/O buffers are the caller's)")
    click.echo(f"  weight_bytes {m['weight_bytes']:>10,}")
    click.echo(f"  MACs         {m['macs']:>10,}")
    for line in convert_cli.summary_lines(result):
        click.echo(line)
    if m.get("compression"):
        from tinyc.report import report_lines
        for line in report_lines(m):
            click.echo("  " + line)


# ----------------------------------------------------------------------------- report
@main.command()
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--speed", is_flag=True, help="Time OUTDIR against the same model with raw weights (built in OUTDIR/raw_baseline).")
@click.option("--board", default="host", show_default=True, help="Board for --speed.")
@click.option("--json", "as_json", is_flag=True, help="Print the compression data as JSON.")
def report(outdir, speed, board, as_json):
    """Sizes and rates of OUTDIR's compressed model: per layer and total, vs float32 and plain int8."""
    from tinyc.pipeline import load_manifest
    from tinyc.report import measure_speed, report_lines, with_measurements

    if speed:
        measure_speed(outdir, board)
    m = load_manifest(outdir)
    if m.get("code_bytes") is None and m.get("compression"):
        from tinyc.boards import load_board
        from tinyc.runflow import ensure_built
        ensure_built(outdir, load_board(m.get("board") or "host"))   # measures the code bytes
        m = load_manifest(outdir)
    if as_json:
        click.echo(json.dumps(with_measurements(m.get("compression") or {}, m), indent=2))
        return
    click.echo(f"{outdir}: {len(m['layers'])} layers, weight_bytes {m['weight_bytes']:,}")
    for line in report_lines(m):
        click.echo(line)


# ----------------------------------------------------------------------------- inspect
@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect(model, as_json):
    """Print MODEL's ops, shapes, parameters, MACs and whether tinyc supports each op."""
    from tinyc.inspect_model import inspect_model

    info = inspect_model(model)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{model}: {len(info['ops'])} ops, {info['params']:,} parameters, {info['macs']:,} MACs")
    for t in info["inputs"]:
        click.echo(f"  input  {t['name']}: {t['shape']} {t['dtype']}")
    for t in info["outputs"]:
        click.echo(f"  output {t['name']}: {t['shape']} {t['dtype']}")
    click.echo(f"  {'#':>3} {'op':20s} {'output shape':18s} {'dtype':7s} {'params':>9s} {'MACs':>11s}  supported")
    for o in info["ops"]:
        sup = "yes" if o["supported"] else f"NO: {o['why']}"
        click.echo(f"  {o['index']:>3} {o['op']:20s} {str(o['output_shape']):18s} {o['dtype']:7s} "
                   f"{o['params']:>9,} {o['macs']:>11,}  {sup}")
    if not info["supported"]:
        click.echo("not supported: see the ops marked NO above", err=True)


# ----------------------------------------------------------------------------- run
@main.command()
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to run on (default: the one OUTDIR was converted for).")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path), help=".npy with [N, *input_shape] samples.")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path), help=".npy to write [N, *output_shape] to.")
@click.option("--port", default=None, help="Serial device of a real board.")
def run(outdir, board, input_path, output_path, port):
    """Run the model in OUTDIR on a board for every sample in --input."""
    from tinyc.runflow import run_samples

    outputs, stats = run_samples(outdir, board, input_path, port=port)
    tmp = output_path.with_name(output_path.name + ".tmp.npy")
    import numpy as np
    np.save(tmp, outputs)
    tmp.replace(output_path)
    click.echo(f"wrote {output_path}: {list(outputs.shape)} {outputs.dtype} from board {stats['board']}"
               + (f"; {stats['unit']} per inference: mean {stats['mean']:,.0f}" if stats.get("mean") else ""))


# ----------------------------------------------------------------------------- validate
@main.command()
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to run on (default: the one OUTDIR was converted for).")
@click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), help=".npy with [N, *input_shape] samples.")
@click.option("--labels", type=click.Path(exists=True, path_type=Path), help=".npy of N integer labels, for accuracy.")
@click.option("--random", "n_random", type=int, default=None, help="Validate on N random inputs (default 100 when no --input).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", type=click.Path(path_type=Path), help="JSON Lines file: one object per sample, written as it arrives.")
@click.option("--port", default=None, help="Serial device of a real board.")
def validate(outdir, board, input_path, labels, n_random, seed, report, port):
    """Run OUTDIR's model on a board and on LiteRT's reference kernels; compare every byte."""
    from tinyc.runflow import validate_outdir

    summary, board_name, n = validate_outdir(outdir, board, input_path, labels, n_random, seed, report, port,
                                             progress_echo=lambda s: click.echo(s, err=True, nl=False))
    d = summary.as_dict()
    click.echo(f"validate {outdir} on {board_name}")
    click.echo(f"  samples        {d['samples']}")
    click.echo(f"  bit-exact      {summary.bit_exact}/{summary.samples}")
    click.echo(f"  max abs diff   {', '.join(f'{v:g}' for v in d['max_abs_diff'])}")
    if d["top1_agreement"] is not None:
        click.echo(f"  top-1 agree    {d['top1_agreement'] * 100:.1f}%")
    if d["accuracy"] is not None:
        click.echo(f"  accuracy       {d['accuracy'] * 100:.1f}% ({summary.correct}/{summary.labelled})")
    if summary.cycles:
        unit = {"ns": "ns (host wall clock)", "instructions": "instructions (emulated: not cycles)"}.get(
            summary.cycle_unit, summary.cycle_unit)
        click.echo(f"  per inference  mean {d['cycles_mean']:,.0f}  min {d['cycles_min']:,}  max {d['cycles_max']:,} {unit}")
    if d.get("layer_cycles_mean"):
        from tinyc.pipeline import load_manifest
        layers = load_manifest(outdir)["layers"]
        click.echo(f"  per layer ({summary.cycle_unit}, mean):")
        for l, c in zip(layers, d["layer_cycles_mean"]):
            click.echo(f"    {l['index']:>3} {l['op']:18s} {c:>12,.0f}  {l['name'][:50]}")
    if summary.report_path:
        click.echo(f"  report         {summary.report_path}")
    if summary.error:
        click.echo(f"tinyc: error: {summary.error} (kept {summary.samples} results)", err=True)
        sys.exit(3)
    if not summary.passed:
        click.echo(f"FAIL: {summary.samples - summary.bit_exact} of {summary.samples} samples differ from the reference", err=True)
        sys.exit(1)
    click.echo("PASS: bit-exact with LiteRT BUILTIN_REF")


def _add_optional_commands():
    try:
        from tinyc.cli_boards import COMMANDS
    except ModuleNotFoundError as exc:
        if exc.name != "tinyc.cli_boards":
            raise
        return
    for cmd in COMMANDS:
        main.add_command(cmd)


_add_optional_commands()

if __name__ == "__main__":
    main()
