"""Uni-Perceiver for Hugging Face transformers.

Importing the package registers the model, its tokenizer, image processor and processor with the Auto classes,
and the `zero-shot-perception` pipeline with `transformers.pipeline`.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from .captioning_uniperceiver import CaptionOutput, UniPerceiverCaptioner
from .configuration_uniperceiver import UniPerceiverConfig
from .image_processing_uniperceiver import UniPerceiverImageProcessor
from .modeling_uniperceiver import (
    UniPerceiverEncoderOutput,
    UniPerceiverModel,
    UniPerceiverOutput,
    UniPerceiverPreTrainedModel,
)
from .pipeline_uniperceiver import ZeroShotPerceptionPipeline, save_for_pipeline
from .processing_uniperceiver import GLUE_LABEL_WORDS, UniPerceiverProcessor
from .targets_uniperceiver import TargetSet
from .tokenization_uniperceiver import UniPerceiverTokenizer
from .video_processing_uniperceiver import UniPerceiverVideoProcessor

AutoConfig.register(UniPerceiverConfig.model_type, UniPerceiverConfig, exist_ok=True)
AutoModel.register(UniPerceiverConfig, UniPerceiverModel, exist_ok=True)
AutoTokenizer.register(UniPerceiverConfig, tokenizer_class=UniPerceiverTokenizer, exist_ok=True)
AutoImageProcessor.register(
    UniPerceiverConfig, image_processor_classes={"pil": UniPerceiverImageProcessor}, exist_ok=True
)
AutoProcessor.register(UniPerceiverConfig, UniPerceiverProcessor, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "zero-shot-perception", pipeline_class=ZeroShotPerceptionPipeline, pt_model=AutoModel, type="multimodal"
)

__all__ = [
    "GLUE_LABEL_WORDS",
    "CaptionOutput",
    "TargetSet",
    "UniPerceiverCaptioner",
    "UniPerceiverConfig",
    "UniPerceiverEncoderOutput",
    "UniPerceiverImageProcessor",
    "UniPerceiverModel",
    "UniPerceiverOutput",
    "UniPerceiverPreTrainedModel",
    "UniPerceiverProcessor",
    "UniPerceiverTokenizer",
    "UniPerceiverVideoProcessor",
    "ZeroShotPerceptionPipeline",
    "save_for_pipeline",
]
