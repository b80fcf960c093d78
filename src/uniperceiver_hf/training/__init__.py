"""The training library: recipes, the multi-task dataset, collator, augmentation, `UniPerceiverTrainer`, its row-wise
AdamW for the token table and the collapse monitor.

It needs the `train` extra (datasets, accelerate, pyyaml): `pip install uniperceiver-hf[train]`. It builds on the
model code at the package root; the root never imports it.
"""

from .collator import UniPerceiverCollator
from .data import MultiTaskDataset, load_recipe_datasets, load_task_dataset
from .monitor import CollapseMonitorCallback
from .optim import RowwiseAdamW
from .recipe import PAPER_TRAINING_ARGUMENTS, Recipe, RecipeError, load_recipe, parse_recipe
from .trainer import UniPerceiverTrainer, build_config, train_recipe


__all__ = [
    "CollapseMonitorCallback",
    "PAPER_TRAINING_ARGUMENTS",
    "MultiTaskDataset",
    "Recipe",
    "RecipeError",
    "RowwiseAdamW",
    "UniPerceiverCollator",
    "UniPerceiverTrainer",
    "build_config",
    "load_recipe",
    "load_recipe_datasets",
    "load_task_dataset",
    "parse_recipe",
    "train_recipe",
]
