"""What the corpus builders (build_shapes_corpus.py, build_corpus.py) share: checks, splits, clips and writing.

- `SPLITS`, `FPS`: the split names (in the order they are built and listed) and the clips' frame rate.
- `split_sizes`: the 70/15/15 (train, validation, test) sizes of a number of items.
- `split_items`: one class's items cut 70/15/15 in order.
- `jitter_colour`: an RGB colour with each channel moved by a random amount.
- `check_number`: refuse an argument that is not a number (by default an integer) in a range.
- `check_frame_size`: refuse an image and frame side that is too small or odd.
- `prepare_output`: the output folder resolved, refusing one the build must not replace.
- `clip_file_name`: the mp4 name of a split's numbered clip of a motion.
- `write_clip`: images written as an H.264 mp4 at `FPS` frames a second.
- `image_features`: the columns of a picture dataset: image, class labels, caption, question, answer.
- `video_features`: the columns of a clip dataset: video path, motion label, caption and more strings.
- `text_pair_features`: the columns of a sentence-pair dataset: text, text pair, label.
- `shuffled_splits`: each split's rows shuffled and turned into one `datasets.DatasetDict`.
- `staged_output`: a folder to build in, moved into place when the build succeeds and removed when it fails.
- `save_datasets`: each `datasets.DatasetDict` saved with one shard per split, returning its rows per split.
- `write_card_and_json`: the data card (README.md) and corpus.json of a corpus.
- `counts_table`: the Markdown table of a corpus's rows per dataset and split.
- `command_line_arguments`: the command-line arguments that rebuild a corpus from its parameters.
- `corpus_argument_parser`: a command-line parser with the --output and --size arguments of every builder.
- `run_command_line`: build a corpus from the parsed command line and print what was written.

The builders import it as a top-level module: both run as scripts (their folder is then first on `sys.path`), and
the tests put this folder on `sys.path` before importing them.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import datasets
from PIL import Image


SPLITS = ("train", "validation", "test")
FPS = 8


def split_sizes(count: int) -> tuple[int, int, int]:
    """70/15/15 (train, validation, test), with one validation and one test item as soon as there are three."""
    held_out = max(1, round(0.15 * count)) if count >= 3 else 0
    return count - 2 * held_out, held_out, held_out


def split_items(items: list) -> dict[str, list]:
    """Cut one class's items (drawn independently, so any cut is a random one) 70/15/15 in order."""
    train, validation, _ = split_sizes(len(items))
    return {
        "train": items[:train],
        "validation": items[train : train + validation],
        "test": items[train + validation :],
    }


def jitter_colour(rgb: tuple[int, int, int], amount: int, rng: random.Random) -> tuple[int, int, int]:
    """`rgb` with each channel moved by up to `amount` either way, kept within 0..255."""
    return tuple(min(255, max(0, value + rng.randint(-amount, amount))) for value in rgb)


def check_number(name: str, value, minimum, maximum=None, kind=int) -> None:
    """Refuse `value` unless it is an integer (a number with `kind=float`) from `minimum` to `maximum` (if given)."""
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int)
    if bad_type or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"`{name}`={value!r}: expected {'a number' if kind is float else 'an integer'} {bound}.")


def check_frame_size(size) -> None:
    """Refuse an image and frame side under 16 pixels or odd (the clips are yuv420p)."""
    check_number("size", size, 16)
    if size % 2:
        raise ValueError(f"`size`={size}: expected an even number (the clips are yuv420p, which halves the sides).")


def prepare_output(output: str | os.PathLike, overwrite: bool, *, corpus: str, name: str | None = None) -> Path:
    """`output` resolved; a file is refused, and a non-empty folder too unless `overwrite`, and even then one without
    a corpus.json (with `name`: one whose corpus.json does not name it). `corpus` says what may be replaced."""
    output = Path(output).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise ValueError(f"`output`={str(output)!r} is a file; expected a folder (new or empty).")
    if not output.is_dir() or not any(output.iterdir()):
        return output
    if not overwrite:
        raise ValueError(
            f"`output`={str(output)!r} already exists and is not empty; pass `--overwrite` "
            f"(overwrite=True) to replace {corpus} there, or choose a new folder."
        )
    if name is None:
        recognised, naming = (output / "corpus.json").is_file(), ""
    else:
        try:
            found = json.loads((output / "corpus.json").read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            found = None
        recognised, naming = found == name, f" naming {name!r}"
    if not recognised:
        raise ValueError(
            f"`output`={str(output)!r} is not empty and holds no corpus.json{naming}, so it is not "
            f"{corpus}; refusing to overwrite it."
        )
    return output


def clip_file_name(split: str, motion: str, number: int) -> str:
    """ "train-moving-left-007.mp4"."""
    return f"{split}-{motion.replace(' ', '-')}-{number:03d}.mp4"


def write_clip(path: Path, images: list[Image.Image]) -> None:
    """An H.264 mp4 (yuv420p, `FPS` frames a second) of the images, which must have even sides."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())


def image_features(**labels: Sequence[str]) -> datasets.Features:
    """`image`, a ClassLabel column per keyword (over its names, in keyword order), then `caption`, `question` and
    `answer` strings."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            **{column: datasets.ClassLabel(names=list(names)) for column, names in labels.items()},
            "caption": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
        }
    )


def video_features(label_names: Sequence[str], *more: str) -> datasets.Features:
    """`video` (an mp4 path), `label` (a ClassLabel over `label_names`), `caption`, then the string columns `more`."""
    return datasets.Features(
        {
            "video": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
            **{column: datasets.Value("string") for column in ("caption", *more)},
        }
    )


def text_pair_features(label_names: Sequence[str]) -> datasets.Features:
    """`text`, `text_pair` (a sentence that goes with it) and `label` (a ClassLabel over `label_names`)."""
    return datasets.Features(
        {
            "text": datasets.Value("string"),
            "text_pair": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
        }
    )


def shuffled_splits(
    rows: dict[str, list],
    features: datasets.Features,
    rng: random.Random,
    make_row: Callable[[int, object], dict] | None = None,
) -> datasets.DatasetDict:
    """Each split's rows shuffled in place (in `SPLITS` order), then made {column: value} by `make_row(index, row)`
    (by default a row is its values in the order of `features`)."""
    result = {}
    for split in SPLITS:
        rng.shuffle(rows[split])
        columns = {name: [] for name in features}
        for index, row in enumerate(rows[split]):
            values = make_row(index, row) if make_row else dict(zip(features, row))
            for name, value in values.items():
                columns[name].append(value)
        result[split] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(result)


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """A fresh folder next to `output` to build in: it replaces `output` when the block ends and is removed if the
    block raises, so a failed build leaves nothing behind and a replaced corpus stays intact until then."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed build in a process with the same id
    staging.mkdir()
    try:
        yield staging
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_datasets(folder: Path, corpus: dict[str, datasets.DatasetDict]) -> dict[str, dict[str, int]]:
    """Each dataset saved to folder/<name> and {name: {split: rows}} returned."""
    for name, dataset in corpus.items():
        # One shard each: `datasets` otherwise writes an empty split (a class of 1-2 items puts none in validation
        # and test) as no shard at all, which `load_from_disk` cannot read back.
        dataset.save_to_disk(str(folder / name), num_shards=dict.fromkeys(SPLITS, 1))
    return {name: {split: dataset[split].num_rows for split in SPLITS} for name, dataset in corpus.items()}


def write_card_and_json(folder: Path, card: str, record: dict) -> None:
    """folder/README.md holding `card` and folder/corpus.json holding `record` (indented JSON)."""
    (folder / "README.md").write_text(card)
    (folder / "corpus.json").write_text(json.dumps(record, indent=2) + "\n")


def counts_table(counts: dict[str, dict[str, int]]) -> str:
    """A Markdown table of the rows of each dataset (a line each) in each split (a column each)."""
    rows = "\n".join(
        f"| {name} | " + " | ".join(str(counts[name][split]) for split in SPLITS) + " |" for name in counts
    )
    return f"""| dataset | {" | ".join(SPLITS)} |
|---|---|---|---|
{rows}"""


def command_line_arguments(parameters: dict) -> str:
    """ "--size 64 --heldout-motion "fading out" ...": the parameters as arguments, leaving out those that are None."""
    return " ".join(
        f"--{key.replace('_', '-')} {json.dumps(value) if isinstance(value, str) else value}"
        for key, value in parameters.items()
        if value is not None
    )


def corpus_argument_parser(docstring: str, replaceable: str) -> argparse.ArgumentParser:
    """A parser described by the docstring's first paragraph, with --output (a new or empty folder, or one holding
    `replaceable` with --overwrite) and --size."""
    parser = argparse.ArgumentParser(description=docstring.split("\n\n")[0])
    parser.add_argument(
        "--output", required=True, help=f"folder to create (new, empty, or {replaceable} with --overwrite)"
    )
    parser.add_argument("--size", type=int, default=64, help="image and frame side in pixels (even)")
    return parser


def run_command_line(
    parser: argparse.ArgumentParser,
    build: Callable[..., dict[str, datasets.DatasetDict]],
    errors: tuple[type[Exception], ...] = (ValueError,),
) -> None:
    """`build(**arguments)` with the parsed command line (one of `errors` is reported as a usage error), then the
    rows of each dataset per split and the time taken are printed."""
    args = parser.parse_args()
    datasets.disable_progress_bars()
    start = time.perf_counter()
    try:
        corpus = build(**vars(args))
    except errors as error:
        parser.error(str(error))
    for name, dataset in corpus.items():
        print(f"{name}: " + ", ".join(f"{split} {dataset[split].num_rows}" for split in SPLITS))
    print(f"wrote {Path(args.output).resolve()} in {time.perf_counter() - start:.1f} s")
