"""Uni-Perceiver for Hugging Face transformers.

Importing the package registers the model, its tokenizer, image processor and processor with the Auto classes,
and the `zero-shot-perception` pipeline with `transformers.pipeline`. The modules beside this file are the model
code a Hub repository carries; the subpackages build on them and are imported on their own: `training` (recipes,
the multi-task dataset, collator and `UniPerceiverTrainer`; it needs the `train` extra), `metrics` (offline
`evaluate` modules) and `tools` (the `uniperceiver-hf` command).
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForPreTraining,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.models.auto.video_processing_auto import AutoVideoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .adapters_uniperceiver import UniPerceiverAdapter
from .captioning_uniperceiver import CaptionOutput, UniPerceiverCaptioner
from .configuration_uniperceiver import UniPerceiverConfig
from .image_processing_uniperceiver import UniPerceiverImageProcessor
from .image_text_to_text_uniperceiver import UniPerceiverForImageTextToText
from .modeling_uniperceiver import (
    UniPerceiverEncoderOutput,
    UniPerceiverModel,
    UniPerceiverOutput,
    UniPerceiverPreTrainedModel,
)
from .onnx_uniperceiver import UniPerceiverORTModel
from .pipeline_uniperceiver import ZeroShotPerceptionPipeline, save_for_pipeline
from .pretraining_uniperceiver import UniPerceiverForPreTraining, UniPerceiverPreTrainingOutput
from .processing_uniperceiver import GLUE_LABEL_WORDS, UniPerceiverProcessor
from .prompt_tuning_uniperceiver import PromptTuningSettings, prepare_prompt_tuning
from .targets_uniperceiver import TargetSet
from .tokenization_uniperceiver import UniPerceiverTokenizer
from .video_processing_uniperceiver import UniPerceiverVideoProcessor
from .zero_shot_uniperceiver import UniPerceiverForZeroShotImageClassification, UniPerceiverZeroShotOutput


AutoConfig.register(UniPerceiverConfig.model_type, UniPerceiverConfig, exist_ok=True)
AutoModel.register(UniPerceiverConfig, UniPerceiverModel, exist_ok=True)
AutoModelForPreTraining.register(UniPerceiverConfig, UniPerceiverForPreTraining, exist_ok=True)
AutoModelForZeroShotImageClassification.register(
    UniPerceiverConfig, UniPerceiverForZeroShotImageClassification, exist_ok=True
)
AutoModelForImageTextToText.register(UniPerceiverConfig, UniPerceiverForImageTextToText, exist_ok=True)
AutoTokenizer.register(UniPerceiverConfig, tokenizer_class=UniPerceiverTokenizer, exist_ok=True)
AutoImageProcessor.register(
    UniPerceiverConfig, image_processor_classes={"pil": UniPerceiverImageProcessor}, exist_ok=True
)
# transformers >= 5.25 loads every sub-processor through its Auto class, and `AutoVideoProcessor` asks for the
# "torchvision" backend unless told otherwise: the class serves every backend name because it needs none (PyAV and
# NumPy). (`transformers.AutoVideoProcessor` is a placeholder without torchvision; its module holds the real class.)
AutoVideoProcessor.register(
    UniPerceiverConfig,
    video_processor_classes={"torchvision": UniPerceiverVideoProcessor, "pil": UniPerceiverVideoProcessor},
    exist_ok=True,
)
AutoProcessor.register(UniPerceiverConfig, UniPerceiverProcessor, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "zero-shot-perception", pipeline_class=ZeroShotPerceptionPipeline, pt_model=AutoModel, type="multimodal"
)

__all__ = [
    "GLUE_LABEL_WORDS",
    "CaptionOutput",
    "PromptTuningSettings",
    "TargetSet",
    "UniPerceiverAdapter",
    "UniPerceiverCaptioner",
    "UniPerceiverConfig",
    "UniPerceiverEncoderOutput",
    "UniPerceiverForPreTraining",
    "UniPerceiverForImageTextToText",
    "UniPerceiverForZeroShotImageClassification",
    "UniPerceiverImageProcessor",
    "UniPerceiverModel",
    "UniPerceiverORTModel",
    "UniPerceiverOutput",
    "UniPerceiverPreTrainedModel",
    "UniPerceiverPreTrainingOutput",
    "UniPerceiverProcessor",
    "UniPerceiverTokenizer",
    "UniPerceiverVideoProcessor",
    "UniPerceiverZeroShotOutput",
    "ZeroShotPerceptionPipeline",
    "prepare_prompt_tuning",
    "save_for_pipeline",
]
