"""Encoding a padded side in groups of similar length: the plan, and the same features, hidden states at real
positions and gradients as one padded batch, for every kind of read-out."""

import pytest
import torch

from uniperceiver_hf.length_groups_uniperceiver import GROUP_OVERHEAD_TOKENS, plan_length_groups, text_lengths
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining


LENGTHS = [3, 3, 4, 5, 20, 7, 2, 2, 11, 4, 3, 6]


def _padded(lengths: list[int], width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).long()
    return torch.randint(1, 1000, (len(lengths), width), generator=generator) * mask, mask


def _model(config, groups: int) -> UniPerceiverForPreTraining:
    torch.manual_seed(0)
    model = UniPerceiverForPreTraining(config).eval()  # eval: no drop path, whose draws depend on the row order
    model.uniperceiver.length_groups = groups
    return model


def test_text_lengths_read_masks_visibilities_and_read_out_positions():
    _, mask = _padded([2, 5, 1], 6)
    assert text_lengths(mask, None).tolist() == [2, 5, 1]
    assert text_lengths(mask, torch.tensor([3, 0, 0])).tolist() == [4, 5, 1]  # a read-out position counts
    visibility = torch.tril(torch.ones(6, 6)) * mask[:, None, :] * mask[:, :, None]
    selected = torch.zeros(3, 6, dtype=torch.bool)
    selected[2, 3] = True
    assert text_lengths(visibility, selected).tolist() == [2, 5, 4]


def test_the_plan_covers_every_row_once_in_ascending_groups_and_never_costs_more():
    lengths = torch.tensor(LENGTHS)
    groups = plan_length_groups(lengths, max_groups=4)
    rows = torch.cat(groups)
    assert sorted(rows.tolist()) == list(range(len(LENGTHS)))
    longest = [int(lengths[group].max()) for group in groups]
    assert all(int(lengths[later].min()) >= shorter for shorter, later in zip(longest, groups[1:]))
    cost = sum(len(group) * longest_row + GROUP_OVERHEAD_TOKENS for group, longest_row in zip(groups, longest))
    assert cost < len(LENGTHS) * max(LENGTHS) + GROUP_OVERHEAD_TOKENS
    two = plan_length_groups(lengths, max_groups=2)
    assert sorted(lengths[two[1]].tolist()) == [11, 20]  # the two long rows alone


@pytest.mark.parametrize(
    "lengths, max_groups",
    [([5, 5, 5], 4), (LENGTHS, 1), ([4], 4), ([2, 3, 2, 3], 4)],
    ids=["one length", "off", "one row", "too little to save"],
)
def test_one_padded_batch_where_groups_save_nothing(lengths, max_groups):
    assert plan_length_groups(torch.tensor(lengths), max_groups) is None


def test_text_side_features_logits_and_gradients_match_one_padded_batch(tiny_config):
    tiny_config.layer_scale_init_value = 1.0  # gradients well above float rounding at initialisation
    input_ids, attention_mask = _padded(LENGTHS, 20)
    target_ids, target_mask = _padded([2, 3, 2, 8, 2, 3, 4, 2, 9], 9, seed=1)
    results = {}
    for groups in (1, 4):
        model = _model(tiny_config, groups)
        output = model(task_type="text_classification", input_ids=input_ids, attention_mask=attention_mask,
                       target_input_ids=target_ids, target_attention_mask=target_mask,
                       labels=torch.arange(len(LENGTHS)) % 9)  # fmt: skip
        output.loss.backward()
        grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        results[groups] = output.logits.detach(), grads
    (logits, grads), (grouped_logits, grouped_grads) = results[1], results[4]
    torch.testing.assert_close(grouped_logits, logits, atol=1e-5, rtol=0)
    assert grads.keys() == grouped_grads.keys()
    largest = max(grad.abs().max() for grad in grads.values())
    assert largest > 1e-3
    for name, grad in grads.items():
        torch.testing.assert_close(grouped_grads[name], grad, atol=1e-5 * largest, rtol=0, msg=name)


def test_hidden_states_match_at_real_positions_and_are_zero_past_the_group(tiny_config):
    input_ids, attention_mask = _padded(LENGTHS, 22)  # padded past the longest row, as `max_length` pads
    plain = _model(tiny_config, 1).uniperceiver.encode(input_ids, attention_mask)
    grouped = _model(tiny_config, 4).uniperceiver.encode(input_ids, attention_mask)
    assert grouped.last_hidden_state.shape == plain.last_hidden_state.shape
    real = torch.cat([torch.ones(len(LENGTHS), 1), attention_mask], dim=1).bool()  # `<SPE>` and the tokens
    torch.testing.assert_close(grouped.last_hidden_state[real], plain.last_hidden_state[real], atol=1e-5, rtol=0)
    short = LENGTHS.index(2)  # in the first group, padded to 7 tokens, not 22
    assert (grouped.last_hidden_state[short, 1 + 7 :] == 0).all()
    torch.testing.assert_close(grouped.embeds, plain.embeds, atol=1e-5, rtol=0)


def test_visual_sides_and_every_read_out_match_one_padded_batch(tiny_config):
    generator = torch.Generator().manual_seed(2)
    input_ids, attention_mask = _padded(LENGTHS, 20)
    rows = len(LENGTHS)
    pixels = torch.randn(rows, 3, tiny_config.image_size, tiny_config.image_size, generator=generator)
    lengths = torch.tensor(LENGTHS)
    selected = torch.zeros(rows, 20, dtype=torch.bool)  # masked-LM read-out: flattened row by row
    selected[torch.arange(rows), lengths - 1] = True
    selected[0, 0] = selected[4, 5] = selected[4, 19] = True
    visibility = torch.tril(torch.ones(20, 20)) * attention_mask[:, None, :] * attention_mask[:, :, None]
    cases = {
        "VQA, one position per row": dict(attention_mask=attention_mask, feature_index=lengths - 1),
        "masked LM, selected positions": dict(attention_mask=attention_mask, feature_index=selected),
        "caption visibility": dict(attention_mask=visibility, feature_index=selected),
    }
    plain, grouped = _model(tiny_config, 1).uniperceiver, _model(tiny_config, 4).uniperceiver
    for name, arguments in cases.items():
        expected = plain.encode(input_ids, pixel_values=pixels, **arguments).feature_hidden_state
        actual = grouped.encode(input_ids, pixel_values=pixels, **arguments).feature_hidden_state
        assert actual.shape == expected.shape, name
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0, msg=name)


def test_recorded_hidden_states_come_from_one_padded_batch(tiny_config):
    input_ids, attention_mask = _padded(LENGTHS, 20)
    model = _model(tiny_config, 4).uniperceiver
    calls = []
    model.encoder.register_forward_hook(lambda *_: calls.append(1))
    recorded = model.encode(input_ids, attention_mask, output_hidden_states=True)
    assert len(calls) == 1
    assert all(state.shape == (len(LENGTHS), 21, tiny_config.hidden_size) for state in recorded.hidden_states)
    model.encode(input_ids, attention_mask)
    assert len(calls) > 2  # split when nothing is recorded
