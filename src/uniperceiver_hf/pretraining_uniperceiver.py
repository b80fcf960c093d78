"""`UniPerceiverForPreTraining`: the model with the pre-training objective of every task type (paper section 3.2).

One forward call trains one task batch, as the collator builds it: classification and VQA score the input against
the task's candidate list, retrieval scores a batch against its own targets in both directions, and language
modelling scores the read-out `<SPE>` positions against the vocabulary (all of it, or a sample the collator drew).
The loss is the task's cross-entropy times its loss weight. Keeping the whole step in one `forward` is what lets
DDP, FSDP and DeepSpeed wrap the model as usual.

It sits at the package root, beside the model, because it is model code: `AutoModelForPreTraining` resolves to it,
and a plain `transformers.Trainer` trains it without the `training/` stack. `TASK_TYPES` lives here because the head
dispatches on it; the recipes of `training/` name the same task types.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

from .losses_uniperceiver import gathered_retrieval_loss, retrieval_loss, similarity_cross_entropy, vocabulary_embeds
from .modeling_uniperceiver import UniPerceiverModel, UniPerceiverPreTrainedModel


SIDE_ARGUMENTS = ("input_ids", "attention_mask", "position_ids", "pixel_values", "feature_index")
TARGET_ARGUMENTS = ("target_input_ids", "target_attention_mask", "target_pixel_values")


@dataclass(frozen=True)
class TaskType:
    """What a task type reads, what it is scored against, and its defaults (paper appendix E)."""

    modality: str  # "image", "video" or "text": what the input side holds besides text
    columns: tuple[str, ...]  # required dataset columns (roles), mapped to real names by the recipe
    targets: str  # "classes", "in_batch", "vocabulary" or "answers"
    logit_scale: str
    label_smoothing: float


# Language modelling uses plain cross-entropy; every other task 0.1 label smoothing (appendix E).
TASK_TYPES: dict[str, TaskType] = {
    "image_classification": TaskType("image", ("image", "label"), "classes", "img_cls", 0.1),
    "video_classification": TaskType("video", ("video", "label"), "classes", "video_cls", 0.1),
    "image_text_retrieval": TaskType("image", ("image", "caption"), "in_batch", "retrieve", 0.1),
    "video_text_retrieval": TaskType("video", ("video", "caption"), "in_batch", "retrieve", 0.1),
    "text_text_retrieval": TaskType("text", ("text", "text_pair"), "in_batch", "tqa_retrieve", 0.1),
    "masked_lm": TaskType("text", ("text",), "vocabulary", "text_mlm", 0.0),
    "image_masked_lm": TaskType("image", ("image", "caption"), "vocabulary", "mlm", 0.0),
    "causal_lm": TaskType("text", ("text",), "vocabulary", "text_caption", 0.0),
    "image_caption": TaskType("image", ("image", "caption"), "vocabulary", "caption", 0.0),
    "video_caption": TaskType("video", ("video", "caption"), "vocabulary", "caption", 0.0),
    "vqa": TaskType("image", ("image", "question", "answer"), "answers", "downstream", 0.1),
    "text_classification": TaskType("text", ("text", "label"), "classes", "text_mlm", 0.1),
}


def _world_size() -> int:
    """Processes of the default process group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@dataclass
class UniPerceiverPreTrainingOutput(ModelOutput):
    """
    Args:
        loss (`[]`): the task's loss times its loss weight (what is back-propagated).
        task_loss (`[]`): the unweighted task loss (what is logged per task).
        logits (`[N_inputs, N_targets]`): the similarity logits the loss was computed from (with gathered retrieval
            features, this process's inputs against every process's targets).
    """

    loss: torch.FloatTensor | None = None
    task_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class UniPerceiverForPreTraining(UniPerceiverPreTrainedModel):
    """`UniPerceiverModel` plus the per-task objectives. Its weights are the base model's under the `uniperceiver.`
    prefix, so `UniPerceiverModel.from_pretrained` loads a checkpoint of this class directly.

    `vocabulary_process_group`: when set (the trainer sets it for several processes and an exact-vocabulary LM
    task), every process encodes its share of the vocabulary in every step in which any process trains an LM
    task with the exact vocabulary, as appendix E shards it.
    """

    def __init__(self, config):
        super().__init__(config)
        self.uniperceiver = UniPerceiverModel(config)
        self.vocabulary_process_group = None
        self.post_init()

    @classmethod
    def wrap(cls, model: UniPerceiverModel) -> UniPerceiverForPreTraining:
        """Wraps an existing model (e.g. one prepared for prompt tuning) without copying its weights."""
        with torch.device("meta"):
            wrapper = cls(model.config)
        wrapper.uniperceiver = model
        return wrapper

    def _shared_vocabulary(self, needed: bool) -> torch.Tensor | None:
        """The vocabulary features if this step needs them, sharded across processes when a group is set."""
        group = self.vocabulary_process_group
        if group is None:
            return vocabulary_embeds(self.uniperceiver) if needed else None
        import torch.distributed as dist

        flag = torch.tensor([float(needed)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)  # does any process need the vocabulary?
        return vocabulary_embeds(self.uniperceiver, group) if flag.item() > 0 else None

    def forward(
        self,
        task_type: str,
        logit_scale: str | None = None,
        loss_weight: float = 1.0,
        label_smoothing: float = 0.0,
        labels: torch.Tensor | None = None,
        task_name: str | None = None,
        gather_features: bool = False,
        **inputs: torch.Tensor,
    ) -> UniPerceiverPreTrainingOutput:
        r"""
        Args:
            task_type: one of `TASK_TYPES`.
            logit_scale: the per-task temperature by the original's names (default: the task type's).
            loss_weight, label_smoothing: as the recipe (appendix E).
            labels: target indices `[N]` (class, answer, word id or sampled-vocabulary index; -100 ignored) or soft
                targets `[N, C]` (mixup). Not used by retrieval, whose targets are the diagonal.
            task_name: the recipe's task name (logged by the trainer; unused here).
            gather_features: in-batch retrieval only: score against the examples of every process too (the recipe
                task's `gather_features`; see `gathered_retrieval_loss`). No effect in a single process.
            inputs: the input side (`input_ids`, `attention_mask`, `position_ids`, `pixel_values`, `feature_index`)
                and the target side (`target_input_ids`, `target_attention_mask`, `target_pixel_values`).
        """
        if task_type not in TASK_TYPES:
            raise ValueError(f"`task_type` must be one of {sorted(TASK_TYPES)}, got {task_type!r}.")
        unknown = set(inputs) - set(SIDE_ARGUMENTS) - set(TARGET_ARGUMENTS)
        if unknown:
            raise TypeError(f"Unexpected inputs {sorted(unknown)}.")
        kind = TASK_TYPES[task_type]
        logit_scale = logit_scale or kind.logit_scale
        exact_vocabulary = kind.targets == "vocabulary" and "target_input_ids" not in inputs
        vocabulary = self._shared_vocabulary(exact_vocabulary)

        if exact_vocabulary:
            outputs = self.uniperceiver(**inputs, target_embeds=vocabulary, task=logit_scale)
        else:
            outputs = self.uniperceiver(**inputs, task=logit_scale)
        logits = outputs.logits
        if kind.targets == "in_batch" and gather_features and _world_size() > 1:
            scale = self.uniperceiver.head.logit_scales(logit_scale)
            logits, task_loss = gathered_retrieval_loss(outputs.input_embeds, outputs.target_embeds, scale,
                                                        label_smoothing)  # fmt: skip
        elif kind.targets == "in_batch":
            task_loss = retrieval_loss(logits, label_smoothing)
        else:
            if labels is None:
                raise ValueError(f"`labels` are required for {task_type} batches.")
            task_loss = similarity_cross_entropy(logits, labels.to(logits.device), label_smoothing)
        loss = task_loss * loss_weight
        if vocabulary is not None and not exact_vocabulary:
            # Another process scored against the gathered vocabulary: join its backward (the original's null loss).
            loss = loss + vocabulary.sum() * 0.0
        return UniPerceiverPreTrainingOutput(loss=loss, task_loss=task_loss.detach(), logits=logits)


__all__ = ["TASK_TYPES", "TaskType", "UniPerceiverForPreTraining", "UniPerceiverPreTrainingOutput"]
