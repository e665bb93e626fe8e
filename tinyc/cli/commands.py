"""`tinyc convert`, `report`, `inspect`, `run`, `validate`: parse, call one library function, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from tinyc.boards import DEFAULT_BOARD, load_board
from tinyc.build import build_and_record
from tinyc.cli.progress import bar
from tinyc.cli.text import convert_lines, inspect_lines, report_lines, validate_lines
from tinyc.convert import OPTIMIZE_LEVELS, ConvertOptions, convert
from tinyc.metrics.compression import with_measurements
from tinyc.metrics.inspect import inspect_model
from tinyc.metrics.speed import measure_speed
from tinyc.outdir import load_manifest
from tinyc.passes.compress import CompressOptions
from tinyc.passes.prune import PruneOptions, check_fraction, parse_layer_option
from tinyc.run import run_samples
from tinyc.validate import validate_outdir


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


@click.command("convert")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path), help="Folder for the generated sources.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, help="Target board (see `tinyc boards`).")
@click.option("--optimize", type=click.Choice(OPTIMIZE_LEVELS), default="balanced", show_default=True,
              help="Kernel layouts: speed may widen weights to int16 (more flash), size keeps the smallest code and data.")
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
def convert_cmd(model, outdir, board, optimize, calib, calib_random, per_tensor, io_type, eval_data, prune, prune_layer,
                prune_channels, prune_exclude_first_last, train, rewind, weights_mode):
    """Compile MODEL (.tflite, .keras, .h5 or SavedModel) into C sources in OUTDIR."""
    popts = PruneOptions(
        sparsity=check_fraction(prune, "--prune") if prune is not None else None,
        per_layer=dict(parse_layer_option(t) for t in prune_layer),
        channels=check_fraction(prune_channels, "--prune-channels") if prune_channels is not None else None,
        exclude_first_last=prune_exclude_first_last)
    options = ConvertOptions(board=board, optimize=optimize, calib=calib, calib_random=calib_random, per_tensor=per_tensor, io=io_type,
                             eval_data=eval_data, compress=CompressOptions(popts, weights_mode), train=train,
                             rewind=rewind)
    result = convert(model, outdir, options, progress=bar)
    for n in result.notes:
        _echo_err(f"note: {n}")
    for w in result.warnings:
        _echo_err(f"warning: {w}")
    for line in convert_lines(outdir, result):
        click.echo(line)


@click.command("report")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--speed", is_flag=True, help="Time OUTDIR against the same model with raw weights (built in OUTDIR/raw_baseline).")
@click.option("--board", default="host", show_default=True, help="Board for --speed.")
@click.option("--json", "as_json", is_flag=True, help="Print the compression data as JSON.")
def report_cmd(outdir, speed, board, as_json):
    """Sizes and rates of OUTDIR's compressed model: per layer and total, vs float32 and plain int8."""
    if speed:
        measure_speed(outdir, board)
    m = load_manifest(outdir)
    if m.code_bytes is None and m.section("compression"):
        _, m = build_and_record(outdir, load_board(m.board or "host"), m)   # measures the code bytes
    if as_json:
        click.echo(json.dumps(with_measurements(m.section("compression") or {}, m), indent=2))
        return
    click.echo(f"{outdir}: {len(m.layers)} layers, weight_bytes {m.weight_bytes:,}")
    for line in report_lines(m):
        click.echo(line)


@click.command("inspect")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect_cmd(model, as_json):
    """Print MODEL's ops, shapes, parameters, MACs and whether tinyc supports each op."""
    info = inspect_model(model)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for line in inspect_lines(model, info):
        click.echo(line)
    if not info["supported"]:
        _echo_err("not supported: see the ops marked NO above")


@click.command("run")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to run on (default: the one OUTDIR was converted for).")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path), help=".npy with [N, *input_shape] samples.")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path), help=".npy to write [N, *output_shape] to.")
@click.option("--port", default=None, help="Serial device of a real board.")
def run_cmd(outdir, board, input_path, output_path, port):
    """Run the model in OUTDIR on a board for every sample in --input."""
    outputs, stats = run_samples(outdir, board, input_path, port=port, progress=bar)
    tmp = output_path.with_name(output_path.name + ".tmp.npy")
    np.save(tmp, outputs)
    tmp.replace(output_path)
    click.echo(f"wrote {output_path}: {list(outputs.shape)} {outputs.dtype} from board {stats['board']}"
               + (f"; {stats['unit']} per inference: mean {stats['mean']:,.0f}" if stats.get("mean") else ""))


@click.command("validate")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to run on (default: the one OUTDIR was converted for).")
@click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), help=".npy with [N, *input_shape] samples.")
@click.option("--labels", type=click.Path(exists=True, path_type=Path), help=".npy of N integer labels, for accuracy.")
@click.option("--random", "n_random", type=int, default=None, help="Validate on N random inputs (default 100 when no --input).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", type=click.Path(path_type=Path), help="JSON Lines file: one object per sample, written as it arrives.")
@click.option("--port", default=None, help="Serial device of a real board.")
def validate_cmd(outdir, board, input_path, labels, n_random, seed, report, port):
    """Run OUTDIR's model on a board and on LiteRT's reference kernels; compare every byte."""
    summary, b, manifest = validate_outdir(outdir, board, input_path, labels, n_random, seed, report, port,
                                           progress=bar)
    for line in validate_lines(outdir, b.name, summary, manifest):
        click.echo(line)
    if summary.error:
        _echo_err(f"tinyc: error: {summary.error} (kept {summary.samples} results)")
        sys.exit(3)
    if not summary.passed:
        _echo_err(f"FAIL: {summary.samples - summary.bit_exact} of {summary.samples} samples differ from the reference")
        sys.exit(1)
    click.echo("PASS: bit-exact with LiteRT BUILTIN_REF")


COMMANDS = [convert_cmd, report_cmd, inspect_cmd, run_cmd, validate_cmd]
