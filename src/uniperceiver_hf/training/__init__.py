"""The training library: recipes, the multi-task dataset, collator, augmentation and `UniPerceiverTrainer`.

It needs the `train` extra (datasets, accelerate, pyyaml): `pip install uniperceiver-hf[train]`. It builds on the
model code at the package root; the root never imports it.
"""

from .collator import UniPerceiverCollator
from .data import MultiTaskDataset, load_recipe_datasets, load_task_dataset
from .recipe import PAPER_TRAINING_ARGUMENTS, Recipe, RecipeError, load_recipe, parse_recipe
from .trainer import UniPerceiverTrainer, build_config, train_recipe


__all__ = [
    "PAPER_TRAINING_ARGUMENTS",
    "MultiTaskDataset",
    "Recipe",
    "RecipeError",
    "UniPerceiverCollator",
    "UniPerceiverTrainer",
    "build_config",
    "load_recipe",
    "load_recipe_datasets",
    "load_task_dataset",
    "parse_recipe",
    "train_recipe",
]
