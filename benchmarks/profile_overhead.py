"""Overhead and wall time of `advisor profile` on the shipped examples (prints figures).

    python benchmarks/profile_overhead.py [--repeats 2] [--steps 20] [--warmup 3]

For each example, in one run of this benchmark: the median step time with the full profiler
(hooks, DataLoader timer, one counted step) over the median step time with only the step clock
installed ("bare"), alternating the two to share the machine's state (goal ≤ 1.05); and the
wall time of `advisor profile` end to end (goal ≤ 30 s on a 2-core machine; data generation is
done beforehand and excluded). "ratio p10" compares the fastest tenth of the steps, which is
less sensitive to other load on the machine than the median. For the generic command mode: the wall time under
`advisor profile --command` over the same command run directly.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from advisor.profiler import measure_bare_steps, profile_command, profile_script  # noqa: E402

EXAMPLES = {
    "mlp_tabular": ["--data-dir", "data/tabular", "--epochs", "5"],
    "cnn_catdog": ["--data-dir", "data/catdog", "--epochs", "5"],
    "transformer_lm": ["--data-dir", "data/tokens", "--epochs", "2"],
}


def prepare(work: Path) -> None:
    """Generate every example's data once, outside the timings."""
    sys.path.insert(0, str(REPO / "examples"))
    import cnn_catdog  # noqa: F401  (puts make_catdog_images on the path)
    import mlp_tabular
    import transformer_lm
    from make_catdog_images import make_images

    make_images(work / "data/catdog")
    mlp_tabular.make_data(work / "data/tabular/train.csv", 8192, 64, 10, 0)
    transformer_lm.make_corpus(work / "data/tokens/corpus.npy", 16_000, 256, 0)
    subprocess.run([sys.executable, str(REPO / "examples/batch_inference.py"), "--data-dir",
                    "data/shards", "--output", "out/warm.csv"], cwd=work, check=True,
                   capture_output=True)


def hook_cost_us(blocks: int = 11, steps: int = 300) -> tuple[float, float]:
    """(bare, instrumented) microseconds per step of a tiny in-process loop, best of `blocks`.

    The loop (a DataLoader batch, forward, backward, SGD step) is timed, then the profiler's
    hooks are installed in this process exactly as in the child (audit hook, DataLoader timer,
    backward counter, step hooks; the counted step happens before timing) and the loop is timed
    again: the difference is what the instrumentation adds to every step, free of other load
    on the machine because both sides take their fastest block.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from advisor.profiler._child import _FileWatch
    from advisor.profiler._hooks import Recorder

    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(torch.randn(10**6, 4)), batch_size=2)

    def best() -> float:
        it = iter(loader)
        times = []
        for _ in range(blocks):
            t0 = time.perf_counter()
            for _ in range(steps):
                (x,) = next(it)
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()
            times.append((time.perf_counter() - t0) / steps)
        return min(times) * 1e6

    bare = best()
    with tempfile.TemporaryDirectory() as tmp:
        watch = _FileWatch(Path(tmp), Path(__file__))
        sys.addaudithook(watch.hook)
        watch.on = True
        rec = Recorder({"warmup": 3, "steps": 10**9, "script": __file__}, Path(tmp), watch)
        rec.install()
        best()  # warm-up and the counted step happen here
        instrumented = best()
    return bare, instrumented


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        work = Path(tmp)
        prepare(work)
        print(f"{'example':16} {'bare step':>10} {'profiled':>10} {'ratio':>6} "
              f"{'ratio p10':>9} {'profile wall':>13}   (step times: medians over runs)")
        for name, ex_args in EXAMPLES.items():
            script = REPO / "examples" / f"{name}.py"
            bare, full, bare10, full10, walls = [], [], [], [], []
            for _ in range(args.repeats):
                intervals = measure_bare_steps(script, ex_args, steps=args.steps,
                                               warmup=args.warmup, cwd=work)
                bare.append(statistics.median(intervals))
                bare10.append(statistics.quantiles(intervals, n=10)[0])
                prof = profile_script(script, ex_args, steps=args.steps, warmup=args.warmup,
                                      cwd=work)
                full.append(prof["step_time_s"]["median"])
                full10.append(prof["step_time_s"]["p10"])
                walls.append(prof["wall_s"])
            b, f = statistics.median(bare), statistics.median(full)
            r10 = statistics.median(full10) / statistics.median(bare10)
            print(f"{name:16} {b * 1e3:8.2f}ms {f * 1e3:8.2f}ms {f / b:6.3f} {r10:9.3f} "
                  f"{statistics.median(walls):11.1f} s", flush=True)
        cmd = [sys.executable, str(REPO / "examples/batch_inference.py"), "--data-dir",
               "data/shards", "--output", "out/preds.csv"]
        direct, measured, walls = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=work, check=True, capture_output=True)
            direct.append(time.perf_counter() - t0)
            prof = profile_command(cmd, cwd=work)
            measured.append(prof["task"]["wall_s"])
            walls.append(prof["wall_s"])
        d, m = statistics.median(direct), statistics.median(measured)
        print(f"{'batch_inference':16} {d:9.2f}s {m:9.2f}s {m / d:6.3f} {'':9} "
              f"{statistics.median(walls):11.1f} s (--command: the task's wall time)")
        bare_us, inst_us = hook_cost_us()
        print(f"hooks add {inst_us - bare_us:.1f} µs per step (tiny in-process loop: "
              f"{bare_us:.1f} µs bare, {inst_us:.1f} µs instrumented, best of 11 blocks)")


if __name__ == "__main__":
    main()
