"""All the text the CLI prints about results: convert's summary, quantization and
evaluation tables, the compression report and validate's summary."""

from __future__ import annotations

from tinyc.build.ram import ram_lines
from tinyc.convert import ConvertResult
from tinyc.metrics.compression import with_measurements
from tinyc.outdir import Manifest
from tinyc.validate import Summary


def convert_lines(outdir, result: ConvertResult) -> list[str]:
    """What `tinyc convert` prints on stdout."""
    m = result.manifest
    lines = [f"wrote {outdir}: {len(m.layers)} layers ({', '.join(m.ops)})"]
    for kind, ios in (("input", m.inputs), ("output", m.outputs)):
        for t in ios:
            q = f" scale {t.scale:.6g} zp {t.zero_point}" if t.scale is not None else ""
            lines.append(f"  {kind:6s} {t.name}: {t.shape} {t.dtype}{q}")
    mem = m.section("memory") or {}
    held = "intermediate tensors and the inputs; outputs are the caller's" if mem.get("io_in_arena") else \
        "intermediate tensors; I/O buffers are the caller's"
    lines.append(f"  arena_bytes  {m.arena_bytes:>10,}   ({held})")
    if mem:
        lines.append(f"  lower bound  {mem['lower_bound_bytes']:>10,}   ({len(mem['in_place_layers'])} layers in place; "
                     "tinyc inspect OUTDIR --plan shows the plan)")
    lines.append(f"  weight_bytes {m.weight_bytes:>10,}")
    lines.append(f"  MACs         {m.macs:>10,}")
    rep = m.section("quantization_report")
    if rep:
        lines.append("  worst layers by quantization error (SQNR in dB, float vs int8, on the calibration data):")
        lines.extend("    " + l for l in format_worst(rep))
    ev = m.section("evaluation")
    if ev:
        lines.extend("  " + l for l in format_evaluation(ev))
    if m.section("compression"):
        lines.extend("  " + line for line in report_lines(m))
    return lines


def validate_lines(outdir, board_name: str, summary: Summary, manifest: Manifest) -> list[str]:
    """What `tinyc validate` prints on stdout before its verdict."""
    d = summary.as_dict()
    lines = [f"validate {outdir} on {board_name}",
             f"  samples        {d['samples']}",
             f"  bit-exact      {summary.bit_exact}/{summary.samples}",
             f"  max abs diff   {', '.join(f'{v:g}' for v in d['max_abs_diff'])}"]
    if d["top1_agreement"] is not None:
        lines.append(f"  top-1 agree    {d['top1_agreement'] * 100:.1f}%")
    if d["accuracy"] is not None:
        lines.append(f"  accuracy       {d['accuracy'] * 100:.1f}% ({summary.correct}/{summary.labelled})")
    if summary.cycles:
        unit = {"ns": "ns (host wall clock)", "instructions": "instructions (emulated: not cycles)"}.get(
            summary.cycle_unit, summary.cycle_unit)
        lines.append(f"  per inference  mean {d['cycles_mean']:,.0f}  min {d['cycles_min']:,}  max {d['cycles_max']:,} {unit}")
    if d.get("layer_cycles_mean"):
        lines.append(f"  per layer ({summary.cycle_unit}, mean):")
        for l, c in zip(manifest.layers, d["layer_cycles_mean"]):
            lines.append(f"    {l.index:>3} {l.op:18s} {c:>12,.0f}  {l.name[:50]}")
    if summary.stack_max is not None:
        of = f" of {summary.stack_reserved:,} reserved" if summary.stack_reserved else ""
        lines.append(f"  stack          {summary.stack_max:,} bytes{of} (largest high-water mark)")
    if summary.link and any(summary.link.values()):
        lines.append(f"  {link_line(summary.link)}")
    if summary.constant_output:
        lines.append(f"  note           all {summary.samples} samples gave the same output: bit-exact, but it proves "
                     "little; check the inputs' range and scale, or the model (untrained? saturated?)")
    ram = (manifest.section("ram") or {}).get(board_name)
    if ram:
        lines.extend("  " + l for l in ram_lines(ram))
    if summary.report_path:
        lines.append(f"  report         {summary.report_path}")
    if summary.reference_note:
        lines.append(f"  reference      {summary.reference}: {summary.reference_note}")
    return lines


def plan_lines(plan: dict) -> list[str]:
    """What `tinyc inspect OUTDIR --plan` prints."""
    lines = [f"{plan['outdir']}: arena {plan['arena_bytes']:,} B, lower bound {plan['lower_bound_bytes']:,} B "
             f"(most bytes live at one layer, in-place pairs overlapped); inputs "
             f"{'in the arena' if plan['io_in_arena'] else 'in the caller' + chr(39) + 's buffers'}",
             f"  {'buffer':7s} {'offset':>8s} {'bytes':>8s} {'layers':>9s}  in place                      what"]
    for r in plan["buffers"]:
        over = (f"over {r['over']['buffer']} (layer {r['over']['layer']}, gap {r['over']['min_gap']})"
                if r["over"] else "")
        lines.append(f"  {r['buffer']:7s} {r['offset']:>8,} {r['bytes']:>8,} {r['first']:>4}-{r['last']:<4}  "
                     f"{over:29s} {r['what'][:60]}")
    return lines


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def link_line(stats: dict) -> str:
    """The serial link's counts in one line (tinyc.link LinkStats as a dict)."""
    return (f"link           {_count(stats.get('retries', 0), 'retry', 'retries')}, "
            f"{_count(stats.get('resyncs', 0), 'resync')} ({_count(stats.get('crc_errors', 0), 'CRC error')}), "
            f"{_count(stats.get('stale', 0), 'stale reply', 'stale replies')} dropped, "
            f"{_count(stats.get('resets', 0), 'board reset')}")


def inspect_lines(model, info: dict) -> list[str]:
    """What `tinyc inspect` prints (its table)."""
    lines = [f"{model}: {len(info['ops'])} ops, {info['params']:,} parameters, {info['macs']:,} MACs"]
    if info.get("float"):
        lines.append("  float model: support is judged on its op kinds; `tinyc convert MODEL --calib DATA` quantizes "
                     "it to int8 and checks each op's constants then")
    for t in info["inputs"]:
        lines.append(f"  input  {t['name']}: {t['shape']} {t['dtype']}")
    for t in info["outputs"]:
        lines.append(f"  output {t['name']}: {t['shape']} {t['dtype']}")
    lines.append(f"  {'#':>3} {'op':20s} {'output shape':18s} {'dtype':7s} {'params':>9s} {'MACs':>11s}  supported")
    for o in info["ops"]:
        sup = "yes" if o["supported"] else f"NO: {o['why']}"
        lines.append(f"  {o['index']:>3} {o['op']:20s} {str(o['output_shape']):18s} {o['dtype']:7s} "
                     f"{o['params']:>9,} {o['macs']:>11,}  {sup}")
    return lines


def format_worst(report: dict, count: int = 5) -> list[str]:
    """Text lines for the CLI: the `count` worst layers."""
    lines = []
    if report.get("note"):
        lines.append(f"warning: {report['note']}")
    by_index = {e["index"]: e for e in report.get("layers", [])}
    lines.append(f"{'layer':<6}{'op':<20}{'ch.SQNR':>9}{'SQNR':>8}{'cum.SQNR':>10}{'zeroed':>8}  name")
    for w in report.get("worst", [])[:count]:
        e = by_index.get(w["index"], w)

        def f(v):
            return "    -" if v is None else f"{v:.1f}"
        zeroed = e.get("weights_zeroed")
        lines.append(f"{e['index']:<6}{e['op']:<20}{f(e.get('channel_sqnr_db')):>9}{f(e.get('local_sqnr_db')):>8}"
                     f"{f(e.get('sqnr_db')):>10}{('-' if zeroed is None else f'{100 * zeroed:.0f}%'):>8}  "
                     f"{e['name'][:60]}")
    return lines


def format_evaluation(result: dict) -> list[str]:
    """Text lines for the CLI: the accuracies side by side, and the C-vs-reference check."""
    def acc(part):
        d = result.get(part)
        if not d:
            return "-"
        return f"{100 * d['accuracy']:.2f}%" if "accuracy" in d else "n/a"
    lines = [f"evaluation on {result['samples']} samples:",
             f"  accuracy  float {acc('float')}   int8 reference {acc('int8_reference')}   generated C {acc('c')}"]
    cmp = result.get("c_vs_reference", {})
    lines.append("  generated C vs int8 reference: " + (
        "bit-exact on every sample" if cmp.get("bit_exact") else f"{cmp.get('mismatched_samples')} samples differ"))
    if result.get("int8_vs_float", {}).get("top1_agreement") is not None:
        lines.append(f"  int8 vs float top-1 agreement {100 * result['int8_vs_float']['top1_agreement']:.2f}%")
    return lines


def method_lines(c: dict, keras: dict | None) -> list[str]:
    """Per layer: the methods applied, parameters and MACs before -> after, shared values; then
    the stages of the pipeline (Deep Compression's figure) with their rates."""
    lines = [f"{'layer':34s} {'methods':28s} {'params':>8s} {'-> after':>8s} {'MACs':>10s} {'-> after':>10s} "
             f"{'K':>4s} {'values':>6s}"]
    for l in c["layers"]:
        k = l.get("clusters")
        lines.append(f"{l['name'][-34:]:34s} {'+'.join(l.get('methods') or ['-']):28s} {l['params']:>8,} "
                     f"{l['nonzeros']:>8,} {l.get('macs_dense', 0):>10,} {l.get('macs_effective', 0):>10,} "
                     f"{(str(k) if k else '-'):>4s} {l.get('distinct_values', 0):>6}")
    lines.append("  (params after: nonzero weights; MACs after: those the kernel does, zeros skipped when sparse; "
                 "values: distinct nonzero int8 values)")
    for s in (keras or {}).get("stages", []):
        if s["stage"] == "low_rank":
            for r in s["layers"]:
                if r.get("method"):
                    lines.append(f"low-rank {r['name']}: {r['method']} rank {r['ranks']} of {r['full_rank']}, "
                                 f"params {r['params_before']:,} -> {r['params_after']:,}, "
                                 f"MACs {r['macs_before']:,} -> {r['macs_after']:,} "
                                 f"({r['macs_before'] / max(1, r['macs_after']):.2f}x)")
                else:
                    lines.append(f"low-rank {r['name']}: not factorised ({r.get('why')})")
        elif s["stage"] == "qat":
            eq = s.get("equalised") or []
            lines.append(f"quantization-aware fine-tuning ({'per-tensor' if s.get('per_tensor') else 'per-channel'} "
                         "weights, 8-bit activations)"
                         + (f"; channel ranges equalised in {len(eq)} layer pair(s)" if eq else ""))
    if (keras or {}).get("distill"):
        d = keras["distill"]
        lines.append(f"distilled from the original float model: T {d['temperature']:g}, alpha {d['alpha']:g}"
                     + (", soft targets on mixed inputs too" if d.get("mixup") else ""))
    stages = c.get("stages") or []
    if stages:
        lines.append(f"{'stage':10s} {'bytes':>10s} {'a/a* (float32)':>15s} {'(a-a*)/a*':>10s} {'vs previous':>12s}  how")
        for r in stages:
            prev = f"{r['rate_vs_previous']:.2f}x" if r.get("rate_vs_previous") else "-"
            lines.append(f"{r['stage']:10s} {r['bytes']:>10,} {r['compression_rate']:>14.2f}x "
                         f"{r['space_saving_rate']:>10.2f} {prev:>12s}  {r['how']}")
    return lines


def report_lines(manifest: Manifest) -> list[str]:
    """The text `tinyc report` prints."""
    c = manifest.section("compression")
    lines = []
    if not c:
        lines.append(f"no compression data: weight_bytes {manifest.weight_bytes:,} "
                     "(convert with --prune/--weights to get a compression report)")
        return lines
    c = with_measurements(c, manifest)
    lines.append(f"{'layer':34s} {'op':16s} {'params':>8s} {'nonzero':>8s} {'enc':15s} {'bytes':>8s} "
                 f"{'val b/nz':>8s} {'idx b/nz':>8s} {'b/param':>7s} {'est time':>8s}")
    for l in c["layers"]:
        est = (l.get("estimated_slowdown") or {}).get(l["encoding"])
        lines.append(f"{l['name'][-34:]:34s} {l['op']:16s} {l['params']:>8,} {l['nonzeros']:>8,} {l['encoding']:15s} "
                     f"{l['bytes']:>8,} {l['value_bits_per_nonzero']:>8.2f} {l['index_bits_per_nonzero']:>8.2f} "
                     f"{l['bits_per_param']:>7.2f} {(f'{est:.2f}x' if est is not None else '-'):>8s}")
    lines.append(f"{'total weights':34s} {'':16s} {c['weights']:>8,} {c['nonzeros']:>8,} {'':15s} "
                 f"{c['encoded_weight_bytes']:>8,}   sparsity {c['sparsity'] * 100:.1f}%")
    lines.append("  (est time: the layer's estimated time over raw int8 on a Cortex-M4; auto keeps it <= 2x)")
    lines.extend(method_lines(c, manifest.section("keras_compression")))
    lines.append(f"  float32 model   {c['float32_bytes']:>10,} B  ({c['params']:,} parameters x 4)")
    lines.append(f"  plain int8      {c['int8_bytes']:>10,} B  (constant data, raw weights)")
    lines.append(f"  compressed      {c['compressed_bytes']:>10,} B  (constant data as emitted: weights, indices, "
                 "code tables, biases, multipliers)")
    lines.append(f"  vs float32: compression rate {c['compression_rate_vs_float32']:.2f}x, "
                 f"space saving rate {c['space_saving_rate_vs_float32']:.2f}")
    lines.append(f"  vs int8:    compression rate {c['compression_rate_vs_int8']:.2f}x, "
                 f"space saving rate {c['space_saving_rate_vs_int8']:.2f}")
    if "flash_bytes" in c:
        lines.append(f"  flash (weights + code incl. decoder) {c['flash_bytes']:,} B (code {c['code_bytes']:,} B)")
    else:
        lines.append("  flash: code not measured yet (run `tinyc build OUTDIR`)")
    if "flash_bytes_raw" in c and "flash_bytes" in c:
        lines.append(f"  flash of the raw int8 build {c['flash_bytes_raw']:,} B: compression rate "
                     f"{c['flash_bytes_raw'] / c['flash_bytes']:.2f}x on weights + code")
    if "speedup_rate_vs_int8" in c:
        lines.append(f"  speedup rate vs raw int8 build: {c['speedup_rate_vs_int8']:.2f}x ({c.get('speed_unit')})")
        for t in c.get("layer_time_ratio", []):
            lines.append(f"    layer {t['index']:>3} {t['op']:18s} raw {t['raw']:>12,.0f}  compressed {t['compressed']:>12,.0f}"
                         f"  compressed/raw {t['ratio'] if t['ratio'] is not None else float('nan'):5.2f}  {t['name'][-40:]}")
    else:
        lines.append("  speedup: not measured (`tinyc report OUTDIR --speed` times it against a raw build)")
    return lines
