"""Inference benchmark: HF transformers eager vs archdsl plain vs archdsl optimized (CPU, fp32).

    python benchmarks/inference.py                      # both allocator regimes, batch 1 and 8
    python benchmarks/inference.py --repeats 5 --models resnet50 levit_128s
    python benchmarks/inference.py --compile            # also torch.compile of HF and optimized
    python benchmarks/inference.py --ablation           # also optimized without single passes

One process per allocator regime (the script re-executes itself): glibc malloc as is, and
tuned with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 (large activations stay in
the heap instead of being mmapped and page-faulted in on every forward). In each process,
per model: the HF reference randomly initialised (seeded, non-trivial BN statistics), its
weights imported into ours, everything in eval mode, torch.set_num_threads(2); each variant
is timed in interleaved rounds (round-robin over variants, rotating who goes first) and the
median is reported. GFLOP/s use the FLOPs torch's FlopCounterMode counts for the forward,
against this machine's fp32 GEMM and 3x3-conv throughput measured by the same process.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["resnet50", "convnext_tiny", "mobilenet_v2", "levit_128s", "mobilevit_s"]
TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine_peaks(torch) -> dict[str, float]:
    """fp32 GFLOP/s of a large GEMM and a large 3x3 conv on this machine (2 threads)."""
    import torch.nn.functional as F

    with torch.no_grad():
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        a @ b
        gemm = 2 * 2048 ** 3 / _median_time(lambda: a @ b, 5) / 1e9
        x, w = torch.randn(1, 256, 56, 56), torch.randn(256, 256, 3, 3)
        F.conv2d(x, w, padding=1)
        conv = 2 * 256 * 256 * 9 * 56 * 56 / _median_time(lambda: F.conv2d(x, w, padding=1), 5) / 1e9
    return {"gemm": gemm, "conv3x3": conv}


def count_flops(torch, module, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


def _without_onednn(onednn, module, x):
    with onednn.disabled():
        return module(x)


def run_child(args) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import archdsl
    from archdsl.emit import onednn
    from archdsl.passes import PIPELINE, channels_last, fuse_conv_add, linear_to_conv1x1
    from reference import hf_model

    torch.set_num_threads(2)
    regime = "tuned" if os.environ.get("MALLOC_MMAP_MAX_") == "0" else "default"
    peaks = machine_peaks(torch)
    print(f"## allocator: {regime} glibc malloc"
          + (" (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736)" if regime == "tuned" else ""))
    print(f"machine fp32 (2 threads): GEMM 2048^3 {peaks['gemm']:.1f} GFLOP/s, "
          f"conv 3x3 256->256 @56x56 {peaks['conv3x3']:.1f} GFLOP/s\n")

    header = ["model", "batch", "GFLOP", "HF eager ms", "plain ms", "optimized ms", "HF/plain", "HF/opt",
              "opt GFLOP/s", "% GEMM peak"]
    extra_names: list[str] = []
    rows, speedups = [], {b: [] for b in args.batches}
    vs_compiled, compiled_vs_compiled = {b: [] for b in args.batches}, {b: [] for b in args.batches}
    compile_rows = []
    for name in args.models:
        hf = hf_model(name, seed=0)
        plain = archdsl.build(ROOT / "specs" / f"{name}.arch")
        archdsl.import_weights(plain, hf.state_dict(), source="hf")
        plain.eval()
        opt = archdsl.optimize(plain)
        variants = {"hf": lambda x: hf(x).logits, "plain": plain, "opt": opt}
        if args.ablation:
            for label, drop in (("opt w/o channels_last", channels_last), ("opt w/o fuse_conv_add", fuse_conv_add),
                                ("opt w/o linear_to_conv1x1", linear_to_conv1x1)):
                variants[label] = archdsl.optimize(plain, [p for p in PIPELINE if p is not drop])
            variants["opt w/o oneDNN kernels"] = (lambda m: lambda x: _without_onednn(onednn, m, x))(
                archdsl.optimize(plain))
        compiled = {}
        if args.compile:
            for label, mod in (("hf", hf), ("opt", opt)):
                # one static graph per batch size; ours must compile without a graph break
                compiled[label] = torch.compile(mod, dynamic=False, fullgraph=label == "opt")
        for batch in args.batches:
            x = torch.randn(batch, *plain.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                ref = variants["hf"](x)
                diff = (plain(x) - ref).abs().max().item()
                assert diff < 1e-3, f"{name}: plain output differs from HF by {diff:.2e}"
                if batch == args.batches[0]:
                    # optimized vs plain in float64 (in float32 some randomly initialised references,
                    # LeViT's, are too ill-conditioned for an absolute comparison)
                    p64 = archdsl.build(ROOT / "specs" / f"{name}.arch").double()
                    p64.load_state_dict({k: v.double() if v.is_floating_point() else v
                                         for k, v in plain.state_dict().items()})
                    p64.eval()
                    # how far float32 rounding alone moves this model's logits: the tolerance
                    # for compiled outputs, whose kernels round differently
                    want = p64(x.double())
                    fp32_noise = ((plain(x).double() - want).abs().max() / want.abs().max()).item()
                    for label, fn in variants.items():
                        if label.startswith("opt"):
                            o64 = archdsl.optimize(p64)
                            rel = ((o64(x.double()) - want).abs().max() / want.abs().max()).item()
                            assert rel < 1e-6, f"{name} {label}: float64 relative difference {rel:.1e}"
                    del p64
                flops = count_flops(torch, plain, x)
                comp_times = {}
                for label, mod in compiled.items():
                    t = time.perf_counter()
                    out = mod(x)
                    comp_times[label] = time.perf_counter() - t
                    out = out.logits if label == "hf" else out
                    rel = ((out - ref).abs().max() / ref.abs().max()).item()
                    assert rel < max(1e-4, 4 * fp32_noise), \
                        f"{name}: compiled {label} differs from HF by {rel:.1e} (float32 noise {fp32_noise:.1e})"
                    variants[f"compiled {label}"] = (lambda m, lab: (lambda x: m(x).logits) if lab == "hf" else m)(mod, label)
                for fn in variants.values():  # warm up
                    for _ in range(args.warmup):
                        fn(x)
                times = {label: [] for label in variants}
                labels = list(variants)
                for r in range(args.repeats):
                    for label in labels[r % len(labels):] + labels[: r % len(labels)]:
                        t = time.perf_counter()
                        variants[label](x)
                        times[label].append(time.perf_counter() - t)
            med = {label: statistics.median(ts) * 1e3 for label, ts in times.items()}
            speedups[batch].append(med["hf"] / med["opt"])
            if compiled:
                vs_compiled[batch].append(med["compiled hf"] / med["opt"])
                compiled_vs_compiled[batch].append(med["compiled hf"] / med["compiled opt"])
            gflops = flops / (med["opt"] / 1e3) / 1e9
            rows.append([name, batch, f"{flops / 1e9:.2f}", f"{med['hf']:.1f}", f"{med['plain']:.1f}",
                         f"{med['opt']:.1f}", f"{med['hf'] / med['plain']:.2f}x", f"{med['hf'] / med['opt']:.2f}x",
                         f"{gflops:.1f}", f"{100 * gflops / peaks['gemm']:.0f}%"])
            for label in variants:
                if label not in ("hf", "plain", "opt"):
                    if label not in extra_names:
                        extra_names.append(label)
                    rows[-1].append(f"{med[label]:.1f}")
            if compiled:
                compile_rows.append([name, batch] + [f"{comp_times[k]:.1f}" for k in compiled])
            for label in [k for k in variants if k.startswith("compiled")]:
                del variants[label]
        del hf, plain, opt, variants, compiled
    header += [f"{n} ms" for n in extra_names]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    summaries = [("optimized vs HF eager", speedups), ("optimized (eager) vs compiled HF", vs_compiled),
                 ("compiled optimized vs compiled HF", compiled_vs_compiled)]
    for batch in args.batches:
        print()
        for what, ratios in summaries:
            if ratios[batch]:
                r = ratios[batch]
                print(f"batch {batch}: {what} geomean {math.exp(sum(map(math.log, r)) / len(r)):.2f}x, "
                      f"min {min(r):.2f}x")
    if compile_rows:
        print("\ncompile time of the first call, s (not in the timings above)")
        print("| model | batch | " + " | ".join(f"compile {k}" for k in ("hf", "opt")) + " |")
        print("|---|---:|---:|---:|")
        for row in compile_rows:
            print("| " + " | ".join(str(c) for c in row) + " |")
    print(flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per variant (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also torch.compile HF and optimized (slow)")
    ap.add_argument("--ablation", action="store_true", help="also optimized without single passes, and without the oneDNN kernels")
    ap.add_argument("--allocator", choices=["both", "default", "tuned", "inherit"], default="both",
                    help="glibc malloc regime(s); 'inherit' runs in this process as the environment is")
    args = ap.parse_args()
    if args.allocator == "inherit":
        run_child(args)
        return
    regimes = ["default", "tuned"] if args.allocator == "both" else [args.allocator]
    print(f"command: python benchmarks/{Path(__file__).name} " + " ".join(sys.argv[1:]) + "\n")
    for regime in regimes:
        env = {k: v for k, v in os.environ.items() if k not in TUNED_ENV}
        if regime == "tuned":
            env.update(TUNED_ENV)
        argv = [a for a in sys.argv[1:]]
        if "--allocator" in argv:
            i = argv.index("--allocator")
            del argv[i:i + 2]
        subprocess.run([sys.executable, __file__, *argv, "--allocator", "inherit"], env=env, check=True)


if __name__ == "__main__":
    main()
