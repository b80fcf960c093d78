"""Row-wise AdamW of the token table: the dense AdamW update on the rows a step touches, nothing on the others;
sparse-aware clipping; and the trainer's `embedding_update` option."""

import pytest
import torch
from torch import nn

from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.optim import RowwiseAdamW, clip_grad_norm_
from uniperceiver_hf.training.recipe import parse_recipe
from uniperceiver_hf.training.trainer import build_config, train_recipe


# Rows looked up per step: row 1 is skipped in steps 2 and 4, so its moments must be caught up twice; row 3 twice
# in one step (its gradients are summed).
STEPS = ([1, 2, 3, 3], [4, 5], [1, 4, 7], [9], [1, 2, 30])


def _tables(rows: int = 40, dim: int = 6) -> tuple[nn.Embedding, nn.Embedding]:
    torch.manual_seed(0)
    dense = nn.Embedding(rows, dim)
    sparse = nn.Embedding(rows, dim, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    return dense, sparse


@pytest.mark.parametrize("fused", [False, True])
def test_rowwise_update_equals_dense_adamw_on_touched_rows_and_leaves_the_others(fused):
    dense, sparse = _tables()
    settings = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
    dense_optimizer = torch.optim.AdamW(dense.parameters(), **settings)
    sparse_optimizer = RowwiseAdamW(sparse.parameters(), fused=fused, **settings)
    for ids in STEPS:
        ids = torch.tensor(ids)
        # A loss linear in the embeddings: the same gradient in both runs, whatever dense AdamW did to other rows.
        weights = torch.randn(len(ids), dense.embedding_dim)
        before_dense, before_sparse = dense.weight.detach().clone(), sparse.weight.detach().clone()
        for table, optimizer in ((dense, dense_optimizer), (sparse, sparse_optimizer)):
            optimizer.zero_grad()
            (table(ids) * weights).sum().backward()
            optimizer.step()
        assert sparse.weight.grad.is_sparse
        touched = ids.unique()
        untouched = torch.ones(len(before_sparse), dtype=torch.bool)
        untouched[touched] = False
        torch.testing.assert_close(sparse.weight[touched] - before_sparse[touched],
                                   dense.weight[touched] - before_dense[touched])  # fmt: skip
        assert torch.equal(sparse.weight[untouched], before_sparse[untouched])
        for moment in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sparse_optimizer.state[sparse.weight][moment][touched],
                                       dense_optimizer.state[dense.weight][moment][touched])  # fmt: skip
    # Dense AdamW kept moving rows it had seen before by their momentum; the row-wise update does not.
    never_since_step_1 = torch.tensor([3])
    assert not torch.equal(dense.weight[never_since_step_1], sparse.weight[never_since_step_1])


def test_a_dense_step_then_row_wise_steps_keep_dense_adamw_semantics():
    dense, sparse = _tables()
    dense_optimizer, sparse_optimizer = torch.optim.AdamW(dense.parameters()), RowwiseAdamW(sparse.parameters())
    gradient = torch.randn_like(dense.weight)
    for table, optimizer in ((dense, dense_optimizer), (sparse, sparse_optimizer)):
        table.weight.grad = gradient.clone()  # e.g. a checkpoint of a dense run, resumed row-wise
        optimizer.step()
        optimizer.zero_grad()
    ids, weights = torch.tensor([4, 6]), torch.randn(2, 6)
    before_dense, before_sparse = dense.weight.detach().clone(), sparse.weight.detach().clone()
    for table, optimizer in ((dense, dense_optimizer), (sparse, sparse_optimizer)):
        (table(ids) * weights).sum().backward()
        optimizer.step()
    torch.testing.assert_close(sparse.weight[ids] - before_sparse[ids], dense.weight[ids] - before_dense[ids])


def test_rowwise_weight_decay_and_dense_parameters_in_the_same_optimizer():
    dense, sparse = _tables()
    linear = nn.Linear(6, 2)
    twin = nn.Linear(6, 2)
    twin.load_state_dict(linear.state_dict())
    groups = lambda table, head: [{"params": [table.weight], "weight_decay": 0.1},  # noqa: E731
                                  {"params": list(head.parameters()), "weight_decay": 0.05}]  # fmt: skip
    dense_optimizer = torch.optim.AdamW(groups(dense, linear), lr=0.05)
    sparse_optimizer = RowwiseAdamW(groups(sparse, twin), lr=0.05)
    ids = torch.tensor([2, 8])
    for table, head, optimizer in ((dense, linear, dense_optimizer), (sparse, twin, sparse_optimizer)):
        head(table(ids)).pow(2).sum().backward()
        optimizer.step()
    torch.testing.assert_close(sparse.weight[ids], dense.weight[ids])  # first step: weight decay only touches these
    for a, b in zip(linear.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_clip_grad_norm_takes_sparse_gradients_like_their_dense_equivalent():
    dense, sparse = _tables()
    ids = torch.tensor([[1, 2, 2, 5]])
    for table in (dense, sparse):
        table(ids).pow(2).sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(dense.parameters(), 0.5)
    total = clip_grad_norm_(sparse.parameters(), 0.5)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(sparse.weight.grad.to_dense(), dense.weight.grad)


def test_rowwise_optimizer_state_survives_a_state_dict_round_trip():
    _, sparse = _tables()
    optimizer = RowwiseAdamW(sparse.parameters(), lr=0.05)
    sparse(torch.tensor([3, 4])).sum().backward()
    optimizer.step()
    restored = RowwiseAdamW(sparse.parameters(), lr=0.05)
    restored.load_state_dict(optimizer.state_dict())
    state = restored.state[sparse.weight]
    assert state["last_step"].dtype == torch.float32 and state["last_step"][[3, 4]].tolist() == [1.0, 1.0]


def _one_task(data: dict, **training) -> dict:
    tasks = {task["name"]: task for task in data["tasks"]}
    return {**data, "tasks": [tasks["txt_ret"]], "training": {**data["training"], **training}}


def test_trainer_updates_only_the_rows_it_looked_up_and_restores_dense_gradients(training_recipe_data, tmp_path):
    torch.manual_seed(0)
    recipe = parse_recipe(_one_task(training_recipe_data))
    model = UniPerceiverForPreTraining(build_config(recipe))
    before = model.get_input_embeddings().weight.detach().clone()
    looked_up = set()
    model.get_input_embeddings().register_forward_hook(
        lambda m, args, out: looked_up.update(args[0].flatten().tolist())
    )
    trainer = train_recipe(recipe, tmp_path / "run", model=model, max_steps=3, save_final=False)
    assert type(trainer.optimizer.optimizer) is RowwiseAdamW
    table = model.get_input_embeddings()
    assert table.sparse is False  # training-time only: the model behaves as loaded afterwards
    changed = set((table.weight.detach() != before).any(-1).nonzero().flatten().tolist())
    assert changed and changed <= looked_up


def test_trainer_embedding_update_option(training_recipe_data, tmp_path):
    recipe = parse_recipe(_one_task(training_recipe_data, embedding_update="dense"))
    trainer = train_recipe(recipe, tmp_path / "dense", max_steps=1, save_final=False)
    assert type(trainer.optimizer.optimizer) is torch.optim.AdamW
    with pytest.raises(ValueError, match="`embedding_update` must be one of"):
        train_recipe(parse_recipe(_one_task(training_recipe_data)), tmp_path / "bad", max_steps=1,
                     save_final=False, embedding_update="lazy")  # fmt: skip
    with pytest.raises(ValueError, match="needs an AdamW `optim`"):
        train_recipe(parse_recipe(_one_task(training_recipe_data)), tmp_path / "sgd", max_steps=1,
                     save_final=False, optim="sgd")  # fmt: skip
