"""The files that let `SentenceTransformer(folder, trust_remote_code=True)` load a saved Uni-Perceiver folder.

sentence-transformers (>= 6) reads three JSON files beside the weights: `modules.json` (one `Transformer` module at
the folder's root, no pooling: the model's own read-out is the embedding), `sentence_bert_config.json` (which model
method embeds each modality and which output field holds the embedding) and `config_sentence_transformers.json`
(cosine similarity). Each modality maps to the package's feature method, so `encode` returns exactly the
L2-normalised features of `get_text_features` / `get_image_features`:

- texts: `get_text_features` (`text + EOT`, read at the prefix `<SPE>` as a candidate, like CLIP's text tower);
- images: `get_image_features`;
- videos: `get_image_features` too, which takes the processor's `[B, T, 3, H, W]` clips (one centre view per video,
  `num_spatial_crops=1`; `get_video_features` is the same call under transformers' `pixel_values_videos` name, which
  the processor does not write).

Only JSON is written: the package does not need sentence-transformers installed to save these files.
"""

import json
import os
from pathlib import Path


MODALITY_CONFIG = {
    "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
    "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
    "video": {"method": "get_image_features", "method_output_name": "pooler_output"},
}
SENTENCE_TRANSFORMERS_FILES = {
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}
    ],
    "sentence_bert_config.json": {
        "transformer_task": "feature-extraction",
        "modality_config": MODALITY_CONFIG,
        "module_output_name": "sentence_embedding",
        "processing_kwargs": {"video": {"num_spatial_crops": 1}},
    },
    "config_sentence_transformers.json": {
        "model_type": "SentenceTransformer",
        "similarity_fn_name": "cosine",
        "prompts": {},
        "default_prompt_name": None,
    },
}


def save_sentence_transformers_files(directory: str | os.PathLike) -> None:
    """Writes the sentence-transformers files into `directory` (a folder `save_pretrained` writes), leaving files a
    `SentenceTransformer.save` wrote there (its own modules, prompts or training state) as they are."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in SENTENCE_TRANSFORMERS_FILES.items():
        path = directory / name
        if not path.exists():
            path.write_text(json.dumps(content, indent=2) + "\n")


__all__ = ["MODALITY_CONFIG", "SENTENCE_TRANSFORMERS_FILES", "save_sentence_transformers_files"]
