"""Time the Whisper tiny.en frontend: 20 random 3 s clips, one at a time, on 1 thread.

Usage: python benchmarks/whisper_speed.py [--clips 20] [--seconds 3] [--threads 1]
Prints milliseconds per clip (log-mel + encoder, real frames only, final layer).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from emovox.features.whisper import WhisperFrontend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    samples = int(args.seconds * 16000)
    clips = [(0.1 * rng.standard_normal(samples)).astype(np.float32) for _ in range(args.clips)]
    frontend = WhisperFrontend()
    frontend(clips[0])  # load the model and warm up

    times = []
    for clip in clips:
        start = time.perf_counter()
        features = frontend(clip)
        times.append(time.perf_counter() - start)
    ms = 1000.0 * np.asarray(times)
    machine = platform.processor() or platform.machine()
    print(
        f"whisper tiny.en, {args.clips} clips of {args.seconds:g} s -> {features.shape}, "
        f"{args.threads} thread(s), torch {torch.__version__}, {machine}"
    )
    print(
        f"mean {ms.mean():.1f} ms/clip, median {np.median(ms):.1f}, "
        f"min {ms.min():.1f}, max {ms.max():.1f}"
    )


if __name__ == "__main__":
    main()
