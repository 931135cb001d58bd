"""ONNX Runtime session options for the classifier: threads 1 or 2, pool threads spinning or sleeping,
on the default model's graph with flip averaging and on its flip-free graph; faces/s at batch 64.

Each setting gets ``--rounds`` one-second windows interleaved with the others (so that a change in
the machine's load hits all of them alike); the best window counts, as wall-clock faces/s and as
faces per CPU-second of this process.

    python benchmarks/bench_session_options.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime as ort
from machine import machine_facts

from moodlens.recognition.classifier import EmotionClassifier
from moodlens.recognition.preprocess import to_model_input
from moodlens.spec import IMAGE_SIZE


def session(path: str, threads: int, spinning: bool):  # noqa: ANN201 - a predict function
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda faces: sess.run(None, {name: to_model_input(faces)})[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine_facts().items()))
    graphs = {EmotionClassifier(args.model, threads=1, flip=mode).graph_path for mode in ("average", "alternate")}
    settings = [(g, t, s) for g in sorted(graphs) for t in (1, 2) for s in (True, False)]
    predict = {c: session(str(c[0]), c[1], c[2]) for c in settings}
    faces = np.random.default_rng(0).integers(0, 256, (args.batch, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for run in predict.values():
        for _ in range(3):
            run(faces)
    best = dict.fromkeys(settings, (0.0, 0.0))
    for _ in range(args.rounds):
        for c, run in predict.items():
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < 1.0:
                run(faces)
                n += args.batch
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best[c] = (max(best[c][0], n / wall), max(best[c][1], n / max(cpu, 1e-9)))
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(f"| graph | threads | pool threads spin | faces/s (batch {args.batch}) | faces per CPU-second |")
    print("| --- | --- | --- | --- | --- |")
    for (graph, threads, spinning), (fps, per_cpu) in best.items():
        print(f"| `{graph.name}` | {threads} | {'yes' if spinning else 'no'} | {fps:,.0f} | {per_cpu:,.0f} |")


if __name__ == "__main__":
    main()
