"""Uni-Perceiver for Hugging Face transformers.

Importing the package registers the model with the Auto* classes, so that
`AutoConfig`, `AutoModel` (and `AutoProcessor` once a processor is saved) load converted checkpoints.
"""

from transformers import AutoConfig, AutoModel

from .configuration_uniperceiver import UniPerceiverConfig
from .modeling_uniperceiver import UniPerceiverModel, UniPerceiverOutput, UniPerceiverPreTrainedModel

AutoConfig.register(UniPerceiverConfig.model_type, UniPerceiverConfig, exist_ok=True)
AutoModel.register(UniPerceiverConfig, UniPerceiverModel, exist_ok=True)

# --- processor registrations (owned by the processor work) ---
# --- end of processor registrations ---

__all__ = [
    "UniPerceiverConfig",
    "UniPerceiverModel",
    "UniPerceiverOutput",
    "UniPerceiverPreTrainedModel",
]
