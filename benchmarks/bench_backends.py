"""Real-time factor of every reconstruction back-end on this machine.

    python benchmarks/bench_backends.py [--method codec] [--seconds 4] [--repeats 3] [--threads 2] [--json out.json]

Same as `reconstruct bench`; back-ends whose weights are not staged are timed with random
weights in the published configuration (labelled `random-init`): same speed, meaningless audio.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform

from reconstruct import models as M


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=["codec", "vocoder", "diffusion"])
    ap.add_argument("--model", action="append", default=[], help="back-end name (repeatable)")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", help="write rows and machine description here")
    a = ap.parse_args()
    rows = M.bench(a.method, a.model, a.seconds, a.repeats, a.threads, echo=print)
    print(M.format_table(rows))
    if a.json:
        import torch

        machine = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                       torch_threads=torch.get_num_threads(), torch=torch.__version__, seconds=a.seconds,
                       repeats=a.repeats)
        with open(a.json, "w") as fh:
            json.dump({"machine": machine, "rows": [dataclasses.asdict(r) for r in rows]}, fh, indent=1)


if __name__ == "__main__":
    main()
