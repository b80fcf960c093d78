"""`SentenceTransformer(folder, trust_remote_code=True)` on the default model and on a converted folder (also without
the package): `encode` of texts, images and videos gives the package's features, `.similarity` ranks like the
pipeline, and a few steps of a contrastive loss train, save and reload."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_without_package
from PIL import Image
from sentence_transformers import SentenceTransformer
from transformers import pipeline

from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.sentence_transformers_uniperceiver import SENTENCE_TRANSFORMERS_FILES


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "uniperceiver-tiny-emoji"
LABELS = ["red apple", "dog face", "automobile"]


def pictures() -> list[Image.Image]:
    generator = np.random.default_rng(0)
    return [Image.fromarray(generator.integers(0, 256, (48 + 8 * i, 60, 3), dtype=np.uint8)) for i in range(3)]


@pytest.fixture(scope="module")
def default_model():
    return UniPerceiverModel.from_pretrained(DEFAULT_MODEL).eval()


@torch.no_grad()
def package_features(model, processor, texts=None, images=None, videos=None) -> torch.Tensor:
    if texts is not None:
        inputs = processor(text=texts, return_tensors="pt")
        return model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    if images is not None:
        return model.get_image_features(processor(images=images, return_tensors="pt")["pixel_values"]).pooler_output
    pixels = processor(videos=videos, num_spatial_crops=1, return_tensors="pt")["pixel_values"]
    return model.get_video_features(pixels).pooler_output


def test_the_default_model_folder_carries_the_files_it_needs():
    for name, content in SENTENCE_TRANSFORMERS_FILES.items():
        assert json.loads((DEFAULT_MODEL / name).read_text()) == content, name


def test_encode_gives_the_package_features_and_similarity_ranks_like_the_pipeline(default_model, make_video):
    model = SentenceTransformer(str(DEFAULT_MODEL), trust_remote_code=True)
    processor = UniPerceiverProcessor.from_pretrained(DEFAULT_MODEL)
    video = str(make_video("st.mp4", num_frames=40, fps=10))
    text_embeddings = model.encode(LABELS, convert_to_tensor=True)
    image_embeddings = model.encode(pictures(), convert_to_tensor=True)
    video_embeddings = model.encode([video], convert_to_tensor=True)
    expected = {
        "text": package_features(default_model, processor, texts=LABELS),
        "image": package_features(default_model, processor, images=pictures()),
        "video": package_features(default_model, processor, videos=[video]),
    }
    for name, embeddings in (("text", text_embeddings), ("image", image_embeddings), ("video", video_embeddings)):
        torch.testing.assert_close(embeddings, expected[name], atol=1e-5, rtol=0, msg=name)
    similarity = model.similarity(image_embeddings, text_embeddings)
    classify = pipeline("zero-shot-perception", model=default_model)
    for picture, row in zip(pictures(), similarity):
        ranked = [result["label"] for result in classify(picture, candidate_labels=LABELS)]
        assert ranked == [LABELS[i] for i in row.argsort(descending=True).tolist()]


REMOTE = textwrap.dedent(
    """
    import sys, json
    import numpy as np
    from PIL import Image
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[1], trust_remote_code=True)
    images = [Image.fromarray(np.full((40, 50, 3), 30 * i, np.uint8)) for i in range(2)]
    print(json.dumps({"text": model.encode(sys.argv[2:]).tolist(), "image": model.encode(images).tolist()}))
    """
)


def test_a_converted_folder_loads_without_the_package(golden_model_dirs, tmp_path):
    folder = golden_model_dirs["plain"]
    assert set(SENTENCE_TRANSFORMERS_FILES) <= {path.name for path in folder.iterdir()}  # the converter writes them
    remote = json.loads(run_without_package(REMOTE, folder, *LABELS, tmp_path=tmp_path).strip().splitlines()[-1])
    model = UniPerceiverModel.from_pretrained(folder).eval()
    processor = UniPerceiverProcessor.from_pretrained(folder)
    images = [Image.fromarray(np.full((40, 50, 3), 30 * i, np.uint8)) for i in range(2)]
    np.testing.assert_allclose(remote["text"], package_features(model, processor, texts=LABELS).numpy(), atol=1e-5)
    np.testing.assert_allclose(remote["image"], package_features(model, processor, images=images).numpy(), atol=1e-5)


def test_a_contrastive_loss_trains_saves_and_reloads(tmp_path):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(DEFAULT_MODEL), trust_remote_code=True)
    before = model.encode(pictures(), convert_to_tensor=True)
    pairs = Dataset.from_dict({"anchor": pictures() * 2, "positive": LABELS * 2})
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=3,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=arguments, train_dataset=pairs, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    after = model.encode(pictures(), convert_to_tensor=True)
    assert (after - before).abs().max() > 1e-4  # the two steps moved the image features
    model.save(str(tmp_path / "trained"))
    reloaded = SentenceTransformer(str(tmp_path / "trained"), trust_remote_code=True)
    torch.testing.assert_close(reloaded.encode(pictures(), convert_to_tensor=True), after, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        reloaded.encode(LABELS, convert_to_tensor=True),
        model.encode(LABELS, convert_to_tensor=True),
        atol=1e-5,
        rtol=0,
    )
