"""Real-time factor of every reconstruction back-end on this machine, and its wrapper overhead.

    python benchmarks/bench_backends.py [--method codec] [--model NAME ...] [--seconds 4] [--repeats 3]
        [--threads 2] [--param KEY=VALUE ...] [--json out.json]

Same as `reconstruct bench`; back-ends whose weights are not staged are timed with random
weights in the published configuration (labelled `random-init`): same speed, meaningless audio.
Back-ends with a `raw` method are also timed through the library's own call on the same clip
(at the model's rate, no resampling, no checks), alternating with the back-end runs in the same
process: the `raw RTF` and `overhead` columns. `--param` goes to every back-end that has it.
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
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="back-end parameter, for every selected back-end that has it (repeatable)")
    ap.add_argument("--json", help="write rows and machine description here")
    a = ap.parse_args()
    params = dict(kv.split("=", 1) for kv in a.param)
    rows = M.bench(a.method, a.model, a.seconds, a.repeats, a.threads, echo=print, params=params)
    print(M.format_table(rows))
    if a.json:
        import torch

        machine = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                       torch_threads=torch.get_num_threads(), torch=torch.__version__, seconds=a.seconds,
                       repeats=a.repeats, params=params)
        with open(a.json, "w") as fh:
            json.dump({"machine": machine, "rows": [dataclasses.asdict(r) for r in rows]}, fh, indent=1)


if __name__ == "__main__":
    main()
