"""`tinyc convert`, `report`, `inspect`, `run`, `validate`: parse, call one library function, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tinyc.boards import DEFAULT_BOARD, load_board
from tinyc.build import build_and_record
from tinyc.cli.progress import bar
from tinyc.cli.text import convert_lines, inspect_lines, link_line, plan_lines, report_lines, validate_lines
from tinyc.convert import OPTIMIZE_LEVELS, ConvertOptions, convert
from tinyc.metrics.compression import with_measurements
from tinyc.metrics.html_report import write_html
from tinyc.metrics.inspect import arena_plan, inspect_model, plot_plan
from tinyc.metrics.speed import measure_speed
from tinyc.outdir import load_manifest
from tinyc.passes.cluster import ClusterOptions, check_clusters, parse_cluster_layer
from tinyc.passes.compress import CompressOptions
from tinyc.passes.prune import PruneOptions, check_fraction, parse_layer_option
from tinyc.errors import TinycError
from tinyc.quantize.finetune import DistillOptions, TrainOptions
from tinyc.quantize.lowrank import LowRankOptions, parse_rank, parse_rank_layer
from tinyc.quantize.precision import PrecisionOptions, parse_precision_layer
from tinyc.run import run_samples, save_outputs
from tinyc.validate import validate_outdir


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


_TIMEOUT = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="S",
                        help="Seconds one inference may take before the board counts as hung "
                             "(default: 60 + 1 us per MAC; the serial link adds its wire time).")
_BAUD = click.option("--baud", type=click.IntRange(min=1), default=None,
                     help="Baud rate of a real board's serial link (default: the board file's).")


@click.command("convert")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path), help="Folder for the generated sources.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, help="Target board (see `tinyc boards`).")
@click.option("--optimize", type=click.Choice(OPTIMIZE_LEVELS), default="balanced", show_default=True,
              help="Kernel layouts: speed may widen weights to int16 (more flash), size keeps the smallest code and data.")
@click.option("--calib", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Calibration data for float/Keras models: .npy samples or .npz with x.")
@click.option("--calib-random", type=click.IntRange(min=1), help="Calibrate with N random samples (smoke tests only: scales are not trustworthy).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales instead of per-channel.")
@click.option("--io", "io_type", type=click.Choice(["int8", "float"]), default="int8", show_default=True, help="I/O type of the generated C.")
@click.option("--io-in-arena", is_flag=True, help="Put the inputs in the arena (the caller writes them there; their bytes are reused once read).")
@click.option("--eval", "eval_data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=".npz with x and y: accuracy of float, int8 reference and generated C.")
@click.option("--prune", "prune", type=float, default=None, help="Magnitude-prune this fraction of the weights, globally over the layers (e.g. 0.9).")
@click.option("--prune-layer", "prune_layer", multiple=True, metavar="NAME=S", help="Prune layer NAME to sparsity S (repeatable; overrides --prune for it).")
@click.option("--prune-channels", type=float, default=None, help="Remove this fraction of output channels/neurons per layer (smallest L1), shrinking the model.")
@click.option("--prune-exclude-first-last/--no-prune-exclude-first-last", default=True, show_default=True, help="Leave the first and last weight layers out of --prune when each holds under 10% of the weights.")
@click.option("--prune-allocation", type=click.Choice(["magnitude", "bits"]), default="magnitude", show_default=True, help="How --prune spreads its zeros over the layers: smallest magnitude first, or smallest magnitude per bit the encoded weights take (denser layers store a nonzero in fewer bits).")
@click.option("--train", "train", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Keras models: .npz with x, y to prune gradually while fine-tuning.")
@click.option("--rewind", is_flag=True, help="With --train: rewind surviving weights to an early checkpoint once the masks are final.")
@click.option("--cluster", "cluster", type=int, default=None, metavar="K", help="Weight sharing: k-means each layer's weights to K shared values (Huffman-coded: log2 K bits or less per weight).")
@click.option("--cluster-layer", "cluster_layer", multiple=True, metavar="NAME=K", help="Share layer NAME's weights among K values (repeatable; overrides --cluster for it).")
@click.option("--low-rank", "low_rank", default=None, metavar="R", help="Keras models: factorise Dense (SVD) and Conv2D (Tucker-2) layers keeping this fraction of the rank (0.25) or of the energy (energy:0.9), where that saves parameters and MACs.")
@click.option("--low-rank-layer", "low_rank_layer", multiple=True, metavar="NAME=R", help="Factorise layer NAME with rank R (repeatable; overrides --low-rank for it).")
@click.option("--qat", is_flag=True, help="With --train: quantization-aware fine-tuning (fake-quantized weights and activations).")
@click.option("--distill", is_flag=True, help="With --train: every fine-tuning learns from the original float model (Hinton's loss).")
@click.option("--temperature", type=float, default=DistillOptions.temperature, show_default=True, help="Distillation temperature T.")
@click.option("--alpha", type=float, default=DistillOptions.alpha, show_default=True, help="Distillation: weight of the hard-label loss (1 - alpha on the teacher's soft targets).")
@click.option("--epochs", type=int, default=None, help=f"With --train: epochs of each fine-tuning stage (default {TrainOptions.epochs}).")
@click.option("--weights", "weights_mode", type=click.Choice(["auto", "raw", "sparse", "huffman"]), default=None,
              help="Weight encoding: raw int8, sparse (values + gaps), Huffman (+ Huffman gaps when sparse), or the smallest per tensor "
                   "within 2x the raw time. Default: auto with --cluster, else raw.")
@click.option("--numerics", type=click.Choice(["litert", "tflm"]), default="litert", show_default=True,
              help="Whose rounding the C follows: LiteRT BUILTIN_REF, or TensorFlow Lite Micro (FULLY_CONNECTED rounds twice).")
@click.option("--precision", type=click.Choice(["int8", "16x8", "auto"]), default="int8", show_default=True,
              help="Float/Keras models: int8 activations, 16x8 (int16 activations, int8 weights), or auto: the layers "
                   "whose own SQNR is below --precision-sqnr in 16x8, the rest int8.")
@click.option("--precision-layer", "precision_layer", multiple=True, metavar="NAME=P",
              help="Put layer NAME in precision P (16x8 or int8); repeatable.")
@click.option("--precision-sqnr", type=float, default=20.0, show_default=True,
              help="With --precision auto: the per-layer SQNR (dB) below which a layer goes to 16x8.")
def convert_cmd(model, outdir, board, optimize, calib, calib_random, per_tensor, io_type, io_in_arena, eval_data,
                prune, prune_layer, prune_channels, prune_exclude_first_last, prune_allocation, train, rewind, cluster,
                cluster_layer, low_rank, low_rank_layer, qat, distill, temperature, alpha, epochs, weights_mode, numerics, precision,
                precision_layer, precision_sqnr):
    """Compile MODEL (.tflite, .keras, .h5 or SavedModel) into C sources in OUTDIR."""
    popts = PruneOptions(
        sparsity=check_fraction(prune, "--prune") if prune is not None else None,
        per_layer=dict(parse_layer_option(t) for t in prune_layer),
        channels=check_fraction(prune_channels, "--prune-channels") if prune_channels is not None else None,
        exclude_first_last=prune_exclude_first_last, allocation=prune_allocation)
    copts = ClusterOptions(clusters=check_clusters(cluster, "--cluster") if cluster is not None else None,
                           per_layer=dict(parse_cluster_layer(t) for t in cluster_layer))
    options = ConvertOptions(board=board, optimize=optimize, calib=calib, calib_random=calib_random,
                             per_tensor=per_tensor, io=io_type, eval_data=eval_data,
                             compress=CompressOptions(popts, weights_mode, cluster=copts),
                             train=train, rewind=rewind, qat=qat,
                             low_rank=LowRankOptions(parse_rank(low_rank) if low_rank is not None else None,
                                                     dict(parse_rank_layer(t) for t in low_rank_layer)),
                             distill=DistillOptions(temperature, alpha) if distill else None,
                             training=_training(epochs), io_in_arena=io_in_arena,
                             precision=PrecisionOptions(precision, dict(parse_precision_layer(t) for t in precision_layer),
                                                        precision_sqnr),
                             numerics=numerics)
    result = convert(model, outdir, options, progress=bar)
    for n in result.notes:
        _echo_err(f"note: {n}")
    for w in result.warnings:
        _echo_err(f"warning: {w}")
    for line in convert_lines(outdir, result):
        click.echo(line)


def _training(epochs: int | None) -> TrainOptions | None:
    if epochs is None:
        return None
    if epochs < 1:
        raise TinycError(f"--epochs {epochs}: give at least 1")
    return TrainOptions(epochs=epochs)


@click.command("report")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--speed", is_flag=True, help="Time OUTDIR against the same model with raw weights (built in OUTDIR/raw_baseline).")
@click.option("--board", default="host", show_default=True, help="Board for --speed.")
@click.option("--json", "as_json", is_flag=True, help="Print the compression data as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one self-contained HTML page with the plots (sizes, weights, SQNR, instructions, arena, fit).")
@click.option("--png", "png_dir", type=click.Path(file_okay=False, path_type=Path), help="Write each plot as a PNG here.")
def report_cmd(outdir, speed, board, as_json, html_path, png_dir):
    """Sizes and rates of OUTDIR's compressed model: per layer and total, vs float32 and plain int8."""
    if html_path or png_dir:
        figs = write_html(outdir, html_path, png_dir, progress=bar)
        drawn = [f for f in figs if f.png]
        click.echo(f"wrote {', '.join(str(p) for p in (html_path, png_dir) if p)}: {len(drawn)} plots"
                   + "".join(f"\n  not drawn: {f.title}: {f.note}" for f in figs if not f.png))
        return
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
@click.option("--plan", "show_plan", is_flag=True, help="MODEL is an OUTDIR: print its arena plan (offsets, lifetimes, in-place layers, lower bound).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="MODEL is an OUTDIR: draw its arena over time into this PNG.")
def inspect_cmd(model, as_json, show_plan, plot_path):
    """Print MODEL's ops, shapes, parameters, MACs and whether tinyc supports each op; with
    --plan or --plot, the arena plan of a converted OUTDIR."""
    if show_plan or plot_path:
        plan = arena_plan(model)
        if plot_path:
            plot_plan(plan, plot_path)
        if as_json:
            click.echo(json.dumps(plan, indent=2))
        elif show_plan:
            for line in plan_lines(plan):
                click.echo(line)
        if plot_path:
            click.echo(f"wrote {plot_path}")
        return
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
@click.option("--input", "input_path", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=".npy with [N, *input_shape] samples; for several inputs one .npz (an array per input name) "
                   "or --input once per input, in order.")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path),
              help=".npy to write [N, *output_shape] to; .npz (an array per output name) for several outputs.")
@click.option("--port", default=None, help="Serial device of a real board.")
@_TIMEOUT
@_BAUD
def run_cmd(outdir, board, input_path, output_path, port, timeout, baud):
    """Run the model in OUTDIR on a board for every sample in --input."""
    outputs, stats = run_samples(outdir, board, list(input_path), port=port, progress=bar, output_path=output_path,
                                 timeout=timeout, baud=baud)
    save_outputs(output_path, outputs)
    shapes = ", ".join(f"{name} {list(a.shape)} {a.dtype}" for name, a in outputs.items())
    click.echo(f"wrote {output_path}: {shapes} from board {stats['board']}"
               + (f"; {stats['unit']} per inference: mean {stats['mean']:,.0f}" if stats.get("mean") else ""))
    if stats.get("link") and any(stats["link"].values()):
        click.echo(f"  {link_line(stats['link'])}")


@click.command("validate")
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", default=None, help="Board to run on (default: the one OUTDIR was converted for).")
@click.option("--input", "input_path", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=".npy with [N, *input_shape] samples; for several inputs one .npz (an array per input name) "
                   "or --input once per input, in order.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=".npy of N integer labels, for accuracy.")
@click.option("--random", "n_random", type=click.IntRange(min=1), default=None,
              help="Validate on N random inputs (default 100 when no --input).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--report", type=click.Path(path_type=Path), help="JSON Lines file: one object per sample, written as it arrives.")
@click.option("--port", default=None, help="Serial device of a real board; several boards: P1,P2,...")
@click.option("--jobs", type=int, default=None,
              help="Board sessions to share the samples (emulator instances, or one per --port). Default 1, or one per port.")
@click.option("--labgrid", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="labgrid environment (ENV.yaml): flash and talk to its target through its drivers.")
@click.option("--place", default=None, help="With --labgrid: the labgrid place to acquire (and release afterwards).")
@click.option("--reference", type=click.Choice(["litert", "tflm"]), default="litert", show_default=True,
              help="What the board must equal: LiteRT BUILTIN_REF, or TensorFlow Lite Micro's interpreter.")
@_TIMEOUT
@_BAUD
def validate_cmd(outdir, board, input_path, labels, n_random, seed, report, port, jobs, labgrid, place, reference,
                 timeout, baud):
    """Run OUTDIR's model on a board and on LiteRT's reference kernels; compare every byte."""
    summary, b, manifest = validate_outdir(outdir, board, list(input_path) or None, labels, n_random, seed, report,
                                           port, progress=bar, timeout=timeout, baud=baud, jobs=jobs,
                                           labgrid=labgrid, place=place, reference=reference)
    for note in summary.notes:
        _echo_err(f"note: {note}")
    for lost in summary.lost_sessions:
        _echo_err(f"warning: a board session was lost (its samples ran on another): {lost}")
    for line in validate_lines(outdir, b.name, summary, manifest):
        click.echo(line)
    if summary.error:
        _echo_err(f"tinyc: error: {summary.error} (kept {summary.samples} results)")
        sys.exit(3)
    if not summary.passed:
        _echo_err(f"FAIL: {summary.samples - summary.bit_exact} of {summary.samples} samples differ from the reference")
        sys.exit(1)
    click.echo(f"PASS: bit-exact with {summary.reference}")


COMMANDS = [convert_cmd, report_cmd, inspect_cmd, run_cmd, validate_cmd]
