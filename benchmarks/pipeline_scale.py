"""The zero-shot-perception pipeline over many images: peak memory flat in the number of images, speed near the
bare model loop.

For each image count, two contenders run in their own fresh process (a process' peak RSS never goes down, so it
can only be attributed to one run): the pipeline streaming a generator of images, `pipe(images,
candidate_labels=labels, batch_size=B)`, and the bare loop a user would write instead: per batch of B images the
image processor, `model.get_image_features(...).pooler_output` and the scores against label features computed once
beforehand. Both see the same uint8 images (480x640 noise, made on the fly so that the input list itself takes no memory) and the
same 10 labels; both run with random weights, fp32, under `torch.inference_mode()`. Each process reports its peak
RSS and its images/s (after one warm-up batch); the table puts the image counts and the two contenders side by
side. Targets: the pipeline's peak RSS at the largest count within 10% of that at the smallest, and its images/s at
least 0.9x the bare loop's.

    python benchmarks/pipeline_scale.py [--size tiny|base] [--images 256,1024] [--batch-size 8] [--threads N]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import transformers


LABELS = ["cat", "dog", "car", "tree", "house", "boat", "chair", "bird", "horse", "bicycle"]
RSS_TARGET = 1.10  # peak RSS at the largest count / at the smallest
SPEED_TARGET = 0.9  # pipeline images/s / bare loop images/s
CONTENDERS = ("pipeline", "bare loop")


def images(count: int):
    """`count` distinct 480x640 uint8 images, made one at a time."""
    for index in range(count):
        yield np.random.default_rng(index).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def build(size: str):
    from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor

    torch.manual_seed(0)
    config = (
        UniPerceiverConfig.from_preset("base")
        if size == "base"
        else UniPerceiverConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    )
    return UniPerceiverModel(config).eval(), UniPerceiverProcessor()


def run_pipeline(model, processor, count: int, batch_size: int) -> int:
    from transformers import pipeline

    pipe = pipeline("zero-shot-perception", model=model, processor=processor)
    done = 0
    for _ in pipe(images(count), candidate_labels=LABELS, batch_size=batch_size):
        done += 1
    return done


def run_bare_loop(model, processor, count: int, batch_size: int) -> int:
    from uniperceiver_hf import TargetSet

    targets = processor.target_inputs(LABELS)
    labels = TargetSet.encode(model, targets["target_input_ids"], targets["target_attention_mask"]).embeds
    scale = model.head.logit_scales("img_cls")
    stream, done = images(count), 0
    while batch := [image for _, image in zip(range(batch_size), stream)]:
        pixels = processor.image_processor(batch, preset="imagenet", return_tensors="pt")["pixel_values"]
        probabilities = (model.get_image_features(pixels).pooler_output @ labels.T * scale).softmax(-1)
        done += len(probabilities.argmax(-1).tolist())
    return done


def child(size: str, contender: str, count: int, batch_size: int) -> dict:
    """One contender at one image count, in this process: images/s after a warm-up batch, and the peak RSS."""
    transformers.logging.set_verbosity_error()
    model, processor = build(size)
    run = run_pipeline if contender == "pipeline" else run_bare_loop
    with torch.inference_mode():
        run(model, processor, batch_size, batch_size)  # warm-up: one batch
        start = time.perf_counter()
        done = run(model, processor, count, batch_size)
        seconds = time.perf_counter() - start
    assert done == count, (done, count)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return dict(images_per_s=count / seconds, peak_rss_mb=peak_mb, seconds=seconds)


def print_table(header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="base", choices=("tiny", "base"))
    parser.add_argument("--images", default="256,1024", help="comma-separated image counts (default 256,1024)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.size, args.child[0], int(args.child[1]), args.batch_size)))
        return
    counts = [int(c) for c in args.images.split(",") if c.strip()]
    if not counts or min(counts) < 1 or args.batch_size < 1:
        parser.error("--images must be positive counts and --batch-size positive")

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
        f"{args.size} size, random weights, fp32, batch size {args.batch_size}, {len(LABELS)} labels, "
        "480x640 uint8 images; one fresh process per row\n"
    )
    results = {}
    for count in counts:
        for contender in CONTENDERS:
            command = [
                sys.executable,
                __file__,
                "--size",
                args.size,
                "--batch-size",
                str(args.batch_size),
                "--child",
                contender,
                str(count),
            ]
            if args.threads is not None:
                command += ["--threads", str(args.threads)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[contender, count] = json.loads(output.strip().splitlines()[-1])
            print(f"  {contender}, {count} images: {results[contender, count]['seconds']:.0f} s", flush=True)
    print()
    rows = []
    for count in counts:
        pipe, bare = results["pipeline", count], results["bare loop", count]
        rows.append(
            (
                count,
                f"{pipe['peak_rss_mb']:.0f}",
                f"{bare['peak_rss_mb']:.0f}",
                f"{pipe['images_per_s']:.2f}",
                f"{bare['images_per_s']:.2f}",
                f"{pipe['images_per_s'] / bare['images_per_s']:.2f}x",
            )
        )
    print_table(
        (
            "images",
            "pipeline peak RSS MB",
            "bare loop peak RSS MB",
            "pipeline images/s",
            "bare loop images/s",
            f"pipeline / bare (target >= {SPEED_TARGET})",
        ),
        rows,
    )
    for contender in CONTENDERS:
        growth = results[contender, counts[-1]]["peak_rss_mb"] / results[contender, counts[0]]["peak_rss_mb"]
        verdict = "met" if growth <= RSS_TARGET else "MISSED"
        print(
            f"{contender}: peak RSS at {counts[-1]} images / at {counts[0]} images = {growth:.3f} "
            f"(target <= {RSS_TARGET}: {verdict})"
        )


if __name__ == "__main__":
    main()
