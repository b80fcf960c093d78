"""Zero-shot evaluation of a Uni-Perceiver model on a `datasets` dataset, with the package's offline metrics.

    python examples/evaluate_zero_shot.py --model DIR --task image-classification --dataset PATH_OR_NAME [options]

Tasks and the columns they read (rename them with the `--*-column` options):

| task | columns | candidates | metric |
|---|---|---|---|
| image-classification | image, label | the label feature's class names, or `--labels` | accuracy |
| video-classification | video (file path), label | as above | accuracy |
| text-classification | sentence [, sentence2], label | the `--glue-task` label words | accuracy |
| vqa | image, question, answers (list) | every answer in the split, or `--labels` | VQA accuracy |
| retrieval | image, captions (list or string) | the split's captions / images | recall@1/5/10 both ways |
| captioning | image, captions (list) | the vocabulary (generation) | BLEU-4, CIDEr |

`--dataset` is a Hub name (needs the network), a `save_to_disk` folder (`datasets.load_from_disk`), or a local
folder or file that `datasets.load_dataset` reads (an image folder, JSON lines, CSV, parquet). Image columns may
hold images or file paths. Examples are read and scored `--batch-size` at a time, so memory stays flat on large
datasets; a progress bar shows how far a run is. With `--labels` on a `ClassLabel` column the dataset's class names
are matched to the given labels by name (every class must be among them; extra labels are distractors).
"""

import argparse
import os

import datasets
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import pipeline

import uniperceiver_hf  # noqa: F401  (registers the pipeline)
from uniperceiver_hf import GLUE_LABEL_WORDS, TargetSet, UniPerceiverCaptioner
from uniperceiver_hf.captioning_uniperceiver import strip_after_eos
from uniperceiver_hf.metrics import load_metric
from uniperceiver_hf.processing_uniperceiver import glue_task_key
from uniperceiver_hf.retrieval_uniperceiver import search


TASKS = ("image-classification", "video-classification", "text-classification", "vqa", "retrieval", "captioning")


def load_split(dataset: str, split: str) -> datasets.Dataset:
    """A `save_to_disk` folder, a local folder or file (format inferred from the extension), or a Hub dataset name."""
    if os.path.isfile(os.path.join(dataset, "state.json")) or os.path.isfile(
        os.path.join(dataset, "dataset_dict.json")
    ):
        saved = datasets.load_from_disk(dataset)
        if isinstance(saved, datasets.DatasetDict):
            if split not in saved:
                raise ValueError(f"`--split` {split!r} is not in {dataset!r}; it has {sorted(saved)}.")
            return saved[split]
        return saved
    if os.path.isfile(dataset):
        extension = dataset.rsplit(".", 1)[-1]
        builder = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}.get(extension)
        if builder is None:
            raise ValueError(f"`--dataset` file {dataset!r}: expected .jsonl, .json, .csv or .parquet.")
        return datasets.load_dataset(builder, data_files=dataset, split=split)
    return datasets.load_dataset(dataset, split=split)


def as_image(value) -> Image.Image:
    return Image.open(value).convert("RGB") if isinstance(value, str) else value


def batches(split: datasets.Dataset, size: int, columns: list[str]):
    """The given columns of `split`, `size` rows at a time (only one batch is decoded at once)."""
    yield from split.select_columns(columns).iter(batch_size=size)


class Rows:
    """`split` as a lazy sequence of pipeline inputs, one per row: `make(row)`; with a length for the progress bar."""

    def __init__(self, split: datasets.Dataset, columns: list[str], make):
        self.split, self.columns, self.make = split, columns, make

    def __len__(self) -> int:
        return len(self.split)

    def __iter__(self):
        return (self.make(row) for row in self.split.select_columns(self.columns))


def class_names(split: datasets.Dataset, column: str, labels: list[str] | None) -> list[str]:
    feature = split.features[column]
    if labels and isinstance(feature, datasets.ClassLabel):
        missing = [name for name in feature.names if name not in labels]
        if missing:
            raise ValueError(
                f"`--labels` must name every class of the {column!r} ClassLabel (matched by name, not position); "
                f"missing: {missing}."
            )
    if labels:
        return labels
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return sorted({str(v) for v in split[column]})


def label_indices(split: datasets.Dataset, column: str, names: list[str]) -> list[int]:
    """The candidate index of each example's label: `ClassLabel` ids by their class name, plain integers as positions
    in `names` (e.g. GLUE labels in the original's order), other values by name."""
    feature = split.features[column]
    values = list(split[column])
    if isinstance(feature, datasets.ClassLabel):
        return [names.index(feature.int2str(v)) for v in values]
    if all(isinstance(v, int) for v in values):
        if any(not 0 <= v < len(names) for v in values):
            raise ValueError(
                f"Integer labels of column {column!r} must be in [0, {len(names)}) (positions in {names})."
            )
        return values
    unknown = sorted({str(v) for v in values} - set(names))
    if unknown:
        raise ValueError(f"Labels {unknown[:5]} of column {column!r} are not among the candidates.")
    return [names.index(str(v)) for v in values]


def classify(pipe, inputs: Rows, names: list[str], batch_size: int, **kwargs) -> list[int]:
    """Arg-max candidate index per input, streamed through the pipeline in batches, with a progress bar."""
    results = pipe(inputs, candidate_labels=names, batch_size=batch_size, progress_bar=True, **kwargs)
    return [names.index(result[0]["label"]) for result in results]


def evaluate_task(args) -> dict:
    split = load_split(args.dataset, args.split)
    if args.limit:
        split = split.select(range(min(args.limit, len(split))))
    pipe = pipeline("zero-shot-perception", model=args.model)

    if args.task in ("image-classification", "video-classification", "text-classification"):
        if args.task == "text-classification":
            if not args.glue_task:
                raise ValueError("`--glue-task` (e.g. sst2, rte) is required for text-classification.")
            names = list(GLUE_LABEL_WORDS[glue_task_key(args.glue_task)])
            if args.text_pair_column:
                columns = [args.text_column, args.text_pair_column]
                inputs = Rows(split, columns, lambda row: (row[columns[0]], row[columns[1]]))
            else:
                inputs = Rows(split, [args.text_column], lambda row: {"text": row[args.text_column]})
            predictions = classify(pipe, inputs, names, args.batch_size, glue_task=args.glue_task)
        else:
            names = class_names(split, args.label_column, args.labels)
            column = args.image_column if args.task == "image-classification" else args.video_column
            convert = as_image if args.task == "image-classification" else (lambda value: value)
            inputs = Rows(split, [column], lambda row: convert(row[column]))
            predictions = classify(pipe, inputs, names, args.batch_size, hypothesis_template=args.template)
        references = label_indices(split, args.label_column, names)
        return load_metric("accuracy").compute(predictions=predictions, references=references)

    if args.task == "vqa":
        answers = split[args.answers_column]
        candidates = args.labels or sorted({a for row in answers for a in row})
        columns = [args.image_column, args.question_column]
        inputs = Rows(split, columns, lambda row: {"image": as_image(row[columns[0]]), "question": row[columns[1]]})
        predictions = [candidates[i] for i in classify(pipe, inputs, candidates, args.batch_size)]
        return load_metric("vqa_accuracy").compute(predictions=predictions, references=answers)

    model, processor = pipe.model, pipe.processor
    if args.task == "retrieval":
        return retrieval_recall(model, processor, split, args)
    captioner = UniPerceiverCaptioner(model, pipe.vocabulary())
    generated = []
    with tqdm(total=len(split), desc="captioning", unit="image") as bar:
        for batch in batches(split, args.batch_size, [args.image_column]):
            images = [as_image(v) for v in batch[args.image_column]]
            pixel_values = processor(images=images, task="retrieve", return_tensors="pt")["pixel_values"]
            output = captioner.generate(pixel_values, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
            generated += processor.tokenizer.batch_decode(strip_after_eos(output.sequences, model.config.eos_token_id))
            bar.update(len(images))
    references = [[c] if isinstance(c, str) else c for c in split[args.captions_column]]
    bleu = load_metric("bleu").compute(predictions=generated, references=references)
    return {"bleu_4": bleu["bleu_4"]} | load_metric("cider").compute(predictions=generated, references=references)


@torch.no_grad()
def image_features(model, processor, split: datasets.Dataset, args) -> torch.Tensor:
    """Retrieval features of every image, encoded `--batch-size` at a time (only the features are kept)."""
    features = []
    with tqdm(total=len(split), desc="encoding images", unit="image") as bar:
        for batch in batches(split, args.batch_size, [args.image_column]):
            images = [as_image(v) for v in batch[args.image_column]]
            pixel_values = processor(images=images, task="retrieve", return_tensors="pt")["pixel_values"]
            features.append(model.get_image_features(pixel_values.to(model.device)).pooler_output)
            bar.update(len(images))
    return torch.cat(features)


def retrieval_recall(model, processor, split: datasets.Dataset, args) -> dict:
    """Recall@K image->text (any of the image's captions) and text->image, as the paper's Tables 3 and 6."""
    captions, owner = [], []
    for index, value in enumerate(split[args.captions_column]):
        for caption in [value] if isinstance(value, str) else value:
            captions.append(caption)
            owner.append(index)
    targets = processor.target_inputs(captions, max_length=50)
    texts = TargetSet.encode(
        model, targets["target_input_ids"], targets["target_attention_mask"], batch_size=args.batch_size
    )
    visuals = image_features(model, processor, split, args)
    depth = min(10, len(captions), len(visuals))
    ks = [k for k in (1, 5, 10) if k <= depth]
    _, image_ranked = search(visuals, texts.embeds, top_k=depth)
    _, text_ranked = search(texts.embeds, visuals, top_k=depth)
    captions_of = [[c for c, o in enumerate(owner) if o == image] for image in range(len(visuals))]
    recall = load_metric("recall_at_k")
    i2t = recall.compute(predictions=image_ranked.tolist(), references=captions_of, k=ks)
    t2i = recall.compute(predictions=text_ranked.tolist(), references=[[o] for o in owner], k=ks)
    return {f"i2t_{k}": v for k, v in i2t.items()} | {f"t2i_{k}": v for k, v in t2i.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a converted model folder (or Hub name)")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--dataset", required=True, help="a local folder/file or a Hub dataset name")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, help="evaluate the first N examples only")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--labels", nargs="+", help="candidate labels (default: from the dataset)")
    parser.add_argument("--template", default="{}", help="prompt template for class names")
    parser.add_argument("--glue-task", help="text-classification template: sst2, cola, rte, mrpc, qqp, qnli, mnli")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--video-column", default="video")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--text-column", default="sentence")
    parser.add_argument("--text-pair-column", help="second sentence column of pair tasks")
    parser.add_argument("--question-column", default="question")
    parser.add_argument("--answers-column", default="answers")
    parser.add_argument("--captions-column", default="captions")
    parser.add_argument("--num-beams", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=21)
    args = parser.parse_args(argv)
    scores = evaluate_task(args)
    for name, value in scores.items():
        print(f"{args.task} | {name} | {value:.4f}")
    return scores


if __name__ == "__main__":
    main()
