"""Run by `torchrun --nproc_per_node=2` from tests/training/test_trainer.py: two training steps of a two-task
recipe (image classification and exact-vocabulary masked LM); each rank writes the tasks it trained and a
checksum of its weights to `<output>/rank<r>.json`."""

import json
import sys
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for conftest
from conftest import make_training_recipe  # noqa: E402

from uniperceiver_hf.training.collator import UniPerceiverCollator  # noqa: E402
from uniperceiver_hf.training.recipe import parse_recipe  # noqa: E402
from uniperceiver_hf.training.trainer import train_recipe  # noqa: E402


corpus, output, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
data = make_training_recipe(corpus)
tasks = {task["name"]: task for task in data["tasks"]}
data["tasks"] = [tasks["img_cls"], dict(tasks["mlm"], vocabulary="exact")]
data["seed"] = seed
seen = []
original_call = UniPerceiverCollator.__call__


def recording_call(self, items):
    seen.append(items[0]["task"])
    return original_call(self, items)


UniPerceiverCollator.__call__ = recording_call
trainer = train_recipe(parse_recipe(data), output, max_steps=2, save_final=False)
rank = torch.distributed.get_rank()
weights = torch.cat([p.detach().double().flatten() for p in trainer.model.parameters()])
result = {
    "rank": rank,
    "tasks": seen,
    "checksum": float(weights.sum()),
    "abs_checksum": float(weights.abs().sum()),
    "logs": trainer.state.log_history,
}
(output / f"rank{rank}.json").write_text(json.dumps(result))
