"""Run by `torchrun --nproc_per_node=2` from tests/test_losses_uniperceiver.py: in-batch retrieval with every
process's features (`gather_features=True`). Each rank holds half of one batch of 2B image-caption pairs; rank 0 also
scores the whole batch alone. Each rank writes its loss and its gradients averaged over the ranks (what DDP applies)
to `<output>/rank<r>.pt`, rank 0 also the single-process loss and gradients."""

import sys

import torch
import torch.distributed as dist

from uniperceiver_hf import UniPerceiverConfig
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining


output = sys.argv[1]
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)  # the same weights and batch on every rank
config = UniPerceiverConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                            image_size=32, patch_size=16, max_position_embeddings=16, drop_path_rate=0.0)  # fmt: skip
model = UniPerceiverForPreTraining(config).train()
per_rank = 3
batch = {
    "pixel_values": torch.randn(world * per_rank, 3, 32, 32),
    "target_input_ids": torch.randint(0, 1000, (world * per_rank, 6)),
    "target_attention_mask": torch.ones(world * per_rank, 6, dtype=torch.long),
}
settings = {"task_type": "image_text_retrieval", "label_smoothing": 0.1}


def gradients() -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


local = {key: value[rank * per_rank : (rank + 1) * per_rank] for key, value in batch.items()}
outputs = model(**local, **settings, gather_features=True)
outputs.loss.backward()
averaged = gradients()
for gradient in averaged.values():  # DDP's average over the ranks
    dist.all_reduce(gradient)
    gradient /= world
result = {"loss": outputs.loss.detach(), "logits_shape": tuple(outputs.logits.shape), "gradients": averaged}
if rank == 0:
    model.zero_grad(set_to_none=True)
    whole = model(**batch, **settings)
    whole.loss.backward()
    result.update(whole_loss=whole.loss.detach(), whole_gradients=gradients())
torch.save(result, f"{output}/rank{rank}.pt")
dist.destroy_process_group()
