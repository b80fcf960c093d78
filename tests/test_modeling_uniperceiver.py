"""UniPerceiverModel: behaviour and numbers on tiny random configs (the goldens are in the parity module)."""

import random

import pytest
import torch
from official_reference import random_official_state_dict, reference_features

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel
from uniperceiver_hf.layouts_uniperceiver import caption_training_inputs, pad_token_sequences
from uniperceiver_hf.modeling_uniperceiver import sincos_2d_position_table
from uniperceiver_hf.tools.convert import infer_config, official_state_dict_to_hf


def model_from_official(sd, num_heads, attn_implementation="sdpa"):
    config = infer_config(sd, num_attention_heads=num_heads)
    config._attn_implementation = attn_implementation
    model = UniPerceiverModel(config).eval()
    model.load_state_dict(official_state_dict_to_hf(sd, model.state_dict()))
    return model


def images(config, batch=2, frames=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (
        (batch, 3, config.image_size, config.image_size)
        if frames is None
        else (batch, frames, 3, config.image_size, config.image_size)
    )
    return torch.randn(shape, generator=generator)


# ----------------------------------------------------------------------------------------------------------------------
# Exactness at sizes the goldens do not cover


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("hidden,layers,heads,ffn", [(96, 3, 6, 160), (48, 1, 2, 80)])
@torch.no_grad()
def test_matches_independent_reference_at_other_sizes(hidden, layers, heads, ffn, attn_implementation):
    sd = random_official_state_dict(hidden, layers, ffn)
    model = model_from_official(sd, heads, attn_implementation)
    config = model.config
    ids, mask = pad_token_sequences([[5, 900, 49407], [7, 49410, 12, 40, 49407]])
    pixels, video = images(config), images(config, frames=3)

    cases = {
        "text": (dict(input_ids=ids, attention_mask=mask), dict(input_ids=ids, padding_mask=1 - mask)),
        "image": (dict(pixel_values=pixels), dict(pixel_values=pixels)),
        "video": (dict(pixel_values=video), dict(pixel_values=video)),
        "image+text": (
            dict(input_ids=ids, attention_mask=mask, pixel_values=pixels),
            dict(input_ids=ids, padding_mask=1 - mask, pixel_values=pixels),
        ),
    }
    for name, (ours, theirs) in cases.items():
        output = model.encode(**ours)
        feature, hidden_states = reference_features(sd, heads, **theirs)
        torch.testing.assert_close(output.last_hidden_state, hidden_states, atol=1e-5, rtol=1e-5, msg=name)
        torch.testing.assert_close(output.embeds, feature, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@torch.no_grad()
def test_caption_layout_matches_reference_with_official_mask(attn_implementation):
    sd = random_official_state_dict(64, 2, 128)
    model = model_from_official(sd, 4, attn_implementation)
    pixels = images(model.config)
    layout = caption_training_inputs([[320, 736, 10712, 49407], [1449, 49407]])
    ours = model.encode(
        layout["input_ids"], layout["attention_mask"], layout["position_ids"], pixels
    ).last_hidden_state

    # The official mask, written out from appendix B: prefix+image see no text; word i sees words <= i;
    # spe i sees words < i and itself.
    visual, length = 1 + 4, layout["input_ids"].shape[1] // 2
    blocked = torch.zeros(visual + 2 * length, visual + 2 * length, dtype=torch.bool)
    blocked[:visual, visual:] = True
    for i in range(length):
        for j in range(length):
            blocked[visual + i, visual + j] = j > i
            blocked[visual + i, visual + length + j] = True
            blocked[visual + length + i, visual + j] = j >= i
            blocked[visual + length + i, visual + length + j] = j != i
    words_mask = (layout["input_ids"][:, :length] != 0).long()
    padding = 1 - torch.cat([words_mask, words_mask], 1)
    _, theirs = reference_features(
        sd, 4, layout["input_ids"], padding, pixels, blocked=blocked, position_ids=layout["position_ids"]
    )
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_sdpa_and_eager_agree_with_prompts_and_caption_mask(tiny_config):
    torch.manual_seed(0)
    config = UniPerceiverConfig(
        **{**tiny_config.to_diff_dict(), "num_prompt_tokens": 3, "share_prompt_tokens": False, "use_spe_bias": True}
    )
    model = UniPerceiverModel(config).eval()
    layout = caption_training_inputs([[3, 4, 5, 49407], [6, 49407]])
    kwargs = dict(
        input_ids=layout["input_ids"],
        attention_mask=layout["attention_mask"],
        position_ids=layout["position_ids"],
        pixel_values=images(config),
        feature_index=layout["feature_index"],
        target_input_ids=torch.tensor([[7, 49407], [8, 49407], [9, 49407]]),
    )
    model.config._attn_implementation = "sdpa"
    sdpa = model(**kwargs, task="caption").logits
    model.config._attn_implementation = "eager"
    eager = model(**kwargs, task="caption").logits
    assert sdpa.shape == (6, 3)
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-5)


def test_sincos_table_matches_official_base_table(golden_dir, goldens):
    table = sincos_2d_position_table(14, 768, 160 / 224)
    torch.testing.assert_close(table, goldens["misc/sincos_spatial_pos_embed_base768"], atol=1e-6, rtol=0)


def test_new_model_uses_official_initialisation(tiny_model, tiny_config):
    embeddings = tiny_model.embeddings.visual.spatial_position_embeddings
    expected = sincos_2d_position_table(2, 32, tiny_config.spatial_position_scale)
    assert torch.equal(embeddings, expected) and not embeddings.requires_grad
    layer = tiny_model.encoder.layers[0]
    assert torch.all(layer.layer_scale1.gamma == 1e-3)
    scales = dict(tiny_model.head.logit_scales.items())
    assert len(scales) == 11 and all(abs(v.item() - 2.6593) < 1e-4 for v in scales.values())
    bound = (6 / (2 * 32)) ** 0.5  # xavier per q/k/v block, not over the fused matrix
    assert (
        layer.self_attn.in_proj.weight.abs().max() <= bound
        and layer.self_attn.in_proj.weight.abs().max() > 0.8 * bound
    )


def test_temporal_initializer_range_sets_the_temporal_tables_start(tiny_config, tmp_path):
    torch.manual_seed(0)
    original = UniPerceiverModel(tiny_config)
    torch.manual_seed(0)
    wide = UniPerceiverModel(UniPerceiverConfig(**{**tiny_config.to_dict(), "temporal_initializer_range": 0.7}))
    assert abs(original.embeddings.visual.temporal_position_embeddings.weight.std().item() - 0.02) < 0.005
    assert abs(wide.embeddings.visual.temporal_position_embeddings.weight.std().item() - 0.7) < 0.15
    assert torch.equal(
        wide.embeddings.visual.spatial_position_embeddings, original.embeddings.visual.spatial_position_embeddings
    )
    # Weights that are loaded keep their values: the option only shapes a new model's start.
    original.save_pretrained(tmp_path)
    loaded = UniPerceiverModel.from_pretrained(tmp_path, temporal_initializer_range=0.7)
    assert loaded.config.temporal_initializer_range == 0.7
    assert torch.equal(
        loaded.embeddings.visual.temporal_position_embeddings.weight,
        original.embeddings.visual.temporal_position_embeddings.weight,
    )


def test_temporal_difference_embedding_starts_as_the_model_without_it_and_sees_only_change(tiny_config, tmp_path):
    torch.manual_seed(0)
    original = UniPerceiverModel(tiny_config).eval()
    torch.manual_seed(0)
    config = UniPerceiverConfig(**{**tiny_config.to_dict(), "temporal_difference_embedding": True})
    moving = UniPerceiverModel(config).eval()
    assert original.embeddings.visual.difference_embedding is None
    projection = moving.embeddings.visual.difference_embedding
    assert projection.bias is None and not projection.weight.any()
    # Zero at the start: with the same other weights, the model scores exactly as the one without the option.
    missing = moving.load_state_dict(original.state_dict(), strict=False).missing_keys
    assert missing == ["embeddings.visual.difference_embedding.weight"]
    clips, single = images(tiny_config, frames=4), images(tiny_config)
    targets = torch.tensor([[3, 49407], [5, 49407]])
    with torch.no_grad():
        for pixels in (clips, single):
            expected = original(pixel_values=pixels, target_input_ids=targets).logits
            assert torch.equal(moving(pixel_values=pixels, target_input_ids=targets).logits, expected)
    # Trained, it adds the projection of each frame's difference from the previous one; the first frame, a clip of
    # one repeated frame and an image get nothing from it.
    with torch.no_grad():
        projection.weight.normal_(0.0, 0.1)
    visual = moving.embeddings.visual
    still = images(tiny_config, frames=1).expand(-1, 4, -1, -1, -1)
    with torch.no_grad():
        assert torch.equal(visual(still), original.embeddings.visual(still))
        assert torch.equal(visual(single[:, None]), original.embeddings.visual(single[:, None]))
        change = (visual(clips) - original.embeddings.visual(clips)).unflatten(1, (4, -1))
        step = projection(clips[:, 1] - clips[:, 0]).flatten(2).transpose(1, 2)
        assert not change[:, 0].any() and torch.allclose(change[:, 1], step, atol=1e-5)
    # The projection trains (a gradient reaches it) and is saved and loaded with the model.
    moving.train()
    moving(pixel_values=clips, target_input_ids=targets).logits.logsumexp(-1).sum().backward()
    assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0
    moving.save_pretrained(tmp_path)
    loaded = UniPerceiverModel.from_pretrained(tmp_path)
    assert loaded.config.temporal_difference_embedding
    assert torch.equal(loaded.embeddings.visual.difference_embedding.weight, projection.weight)


def test_convolutional_stem_gives_one_token_per_patch_and_trains(tiny_config, tmp_path):
    """`convolutional_stem=True`: log2(patch_size) stride-2 3x3 convolutions (channel LayerNorm, GELU) and a 1x1
    projection in place of the linear patch projection; the same tokens per frame, at any resolution."""
    config = UniPerceiverConfig(**{**tiny_config.to_dict(), "convolutional_stem": True})
    torch.manual_seed(0)
    model = UniPerceiverModel(config).eval()
    stem = model.embeddings.visual.patch_embedding
    convolutions = [stage[0] for stage in stem.stages]
    assert len(convolutions) == 4  # 16 px patches: four halvings
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.padding == (1, 1) for c in convolutions)
    # Channels double up to half the hidden size (at least 8); the 1x1 projection then gives the hidden size.
    assert [c.out_channels for c in convolutions] == [8, 8, 8, 16]
    assert stem.projection.in_channels == 16 and stem.projection.out_channels == config.hidden_size
    single, clips = images(config), images(config, frames=3)
    with torch.no_grad():
        assert model.embeddings.visual(single[:, None]).shape == (2, config.num_patches, config.hidden_size)
        assert model.embeddings.visual(clips).shape == (2, 3 * config.num_patches, config.hidden_size)
        larger = torch.randn(2, 1, 3, 64, 64)
        assert model.embeddings.visual(larger, interpolate_pos_encoding=True).shape == (2, 16, config.hidden_size)
        # A token sees its neighbours' pixels (3x3 kernels overlap the patch border); a linear patch does not.
        changed = single.clone()
        changed[:, :, 0, config.patch_size - 1] += 1.0  # the last pixel of the first patch's top row
        for stemmed, visual in (
            (True, model.embeddings.visual),
            (False, UniPerceiverModel(tiny_config).eval().embeddings.visual),
        ):
            difference = (visual(changed[:, None]) - visual(single[:, None])).abs()
            assert difference[:, 0].sum() > 0 and bool(difference[:, 1].any()) == stemmed
    targets = torch.tensor([[3, 49407], [5, 49407]])
    model.train()
    model(pixel_values=single, target_input_ids=targets).logits.logsumexp(-1).sum().backward()
    assert convolutions[0].weight.grad is not None and convolutions[0].weight.grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    loaded = UniPerceiverModel.from_pretrained(tmp_path).eval()
    assert loaded.config.convolutional_stem
    with torch.no_grad():
        assert torch.equal(
            loaded.get_image_features(single).pooler_output, model.eval().get_image_features(single).pooler_output
        )


# ----------------------------------------------------------------------------------------------------------------------
# Head, tasks, loss


@torch.no_grad()
def test_logit_scale_capped_at_100_at_use_time(tiny_model):
    tiny_model.head.logit_scales["img_cls"].fill_(5.0)
    assert tiny_model.head.logit_scales("img_cls").item() == 100.0
    assert tiny_model.head.logit_scales["img_cls"].item() == 5.0
    output = tiny_model(pixel_values=images(tiny_model.config), target_input_ids=torch.tensor([[3, 49407]]))
    cosine = output.input_embeds @ output.target_embeds.T
    torch.testing.assert_close(output.logits, cosine * 100.0)


def test_default_task_follows_modalities(tiny_model):
    config, ids = tiny_model.config, torch.tensor([[3]])
    assert tiny_model.default_task(images(config), None) == "img_cls"
    assert tiny_model.default_task(images(config, frames=2), None) == "video_cls"
    assert tiny_model.default_task(None, ids) == "text_mlm"
    assert tiny_model.default_task(images(config), ids) == "downstream"


@torch.no_grad()
def test_target_embeds_and_loss(tiny_model):
    targets = pad_token_sequences([[3, 49407], [4, 5, 49407], [6, 49407]])
    pixels = images(tiny_model.config)
    full = tiny_model(pixel_values=pixels, target_input_ids=targets[0], target_attention_mask=targets[1])
    cached = tiny_model.get_features(targets[0], targets[1], is_target=True)
    labels = torch.tensor([2, -100])
    reused = tiny_model(pixel_values=pixels, target_embeds=cached, labels=labels)
    torch.testing.assert_close(reused.logits, full.logits)
    assert reused.target_last_hidden_state is None
    torch.testing.assert_close(reused.loss, torch.nn.functional.cross_entropy(full.logits[:1], labels[:1]))


@torch.no_grad()
def test_feature_index_reads_text_positions(tiny_model):
    ids, mask = pad_token_sequences([[3, 49410, 49407], [5, 6, 7, 49410, 49407]])
    pixels = images(tiny_model.config)
    encoded = tiny_model.encode(ids, mask, pixel_values=pixels, feature_index=torch.tensor([1, 3]))
    visual = 1 + 4
    torch.testing.assert_close(encoded.feature_hidden_state[0], encoded.last_hidden_state[0, visual + 1])
    torch.testing.assert_close(encoded.feature_hidden_state[1], encoded.last_hidden_state[1, visual + 3])
    selected = tiny_model.encode(ids, mask, pixel_values=pixels, feature_index=ids == 49410)
    torch.testing.assert_close(selected.feature_hidden_state, encoded.feature_hidden_state)


@torch.no_grad()
def test_padding_does_not_change_features(tiny_model):
    alone = tiny_model.get_features(torch.tensor([[3, 4, 49407]]))
    ids, mask = pad_token_sequences([[3, 4, 49407], [5, 6, 7, 8, 9, 49407]])
    batched = tiny_model.get_features(ids, mask)
    torch.testing.assert_close(batched[:1], alone, atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_prompt_classifier_head(tiny_config):
    config = UniPerceiverConfig(**{**tiny_config.to_diff_dict(), "num_prompt_tokens": 2, "num_prompt_classes": 3})
    model = UniPerceiverModel(config).eval()
    targets = torch.tensor([[3, 49407], [4, 49407], [5, 49407]])
    pixels = images(config)
    # Zero-initialised head and similarity weight 1: logits start equal to the plain similarity (appendix C).
    plain = model(pixel_values=pixels, target_input_ids=targets, use_classifier_head=False).logits
    torch.testing.assert_close(model(pixel_values=pixels, target_input_ids=targets).logits, plain)
    model.head.classifier.bias.fill_(1.0)
    model.head.similarity_weight.fill_(2.0)
    torch.testing.assert_close(model(pixel_values=pixels, target_input_ids=targets).logits, 2 * plain + 1)
    with pytest.raises(ValueError, match="3 classes but 2 targets"):
        model(pixel_values=pixels, target_input_ids=targets[:2])


# ----------------------------------------------------------------------------------------------------------------------
# Training behaviour


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model):
    tiny_model.train()
    kwargs = dict(
        input_ids=torch.tensor([[3, 4, 49410, 49407]] * 2),
        pixel_values=images(tiny_model.config),
        feature_index=torch.tensor([2, 2]),
        target_input_ids=torch.tensor([[5, 49407], [6, 49407]]),
        labels=torch.tensor([0, 1]),
    )

    def gradients():
        torch.manual_seed(0)  # the same random temporal offset in both runs
        tiny_model.zero_grad()
        tiny_model(**kwargs).loss.backward()
        return {n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None}

    plain = gradients()
    tiny_model.activation_checkpointing_enable()
    assert tiny_model.encoder.layers[0].gradient_checkpointing
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys() and len(plain) > 20
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)


def test_drop_path_and_temporal_offset_act_only_in_training(tiny_config):
    config = UniPerceiverConfig(**{**tiny_config.to_diff_dict(), "drop_path_rate": 0.5})
    model = UniPerceiverModel(config)
    video = images(config, frames=2)
    model.eval()
    with torch.no_grad():
        first, second = model.get_features(pixel_values=video), model.get_features(pixel_values=video)
    assert torch.equal(first, second)
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        outputs = [model.get_features(pixel_values=video) for _ in range(6)]
    assert any(not torch.allclose(outputs[0], other) for other in outputs[1:])


# ----------------------------------------------------------------------------------------------------------------------
# transformers conventions: recorded outputs, inputs_embeds, resizing, offloading


def prompt_tuned_tiny_model(tiny_config):
    """The tiny model with every prompt-tuning parameter (deep prompts for both sides, `<SPE>` bias, linear head)."""
    fields = dict(num_prompt_tokens=2, share_prompt_tokens=False, use_spe_bias=True, num_prompt_classes=2)
    torch.manual_seed(0)
    return UniPerceiverModel(UniPerceiverConfig(**{**tiny_config.to_diff_dict(), **fields})).eval()


@torch.no_grad()
def test_hidden_states_and_attentions_are_recorded_for_both_sides(tiny_config):
    model = prompt_tuned_tiny_model(tiny_config)
    model.set_attn_implementation("eager")
    ids, mask = pad_token_sequences([[3, 4, 49407], [5, 49407]])
    targets = torch.tensor([[6, 49407], [7, 49407]])
    output = model(
        ids,
        mask,
        pixel_values=images(model.config),
        target_input_ids=targets,
        output_hidden_states=True,
        output_attentions=True,
    )
    length, target_length = 1 + 4 + 3, 1 + 2
    assert len(output.hidden_states) == len(output.target_hidden_states) == 3  # embeddings + 2 layers
    assert output.hidden_states[0].shape == (2, length, 32) and output.target_hidden_states[0].shape == (
        2,
        target_length,
        32,
    )
    torch.testing.assert_close(output.hidden_states[-1], output.last_hidden_state)
    # Attention weights: the 2 deep prompts are keys only, in front of the sequence; padding gets no weight.
    assert len(output.attentions) == len(output.target_attentions) == 2
    assert output.attentions[0].shape == (2, 4, length, 2 + length)
    assert output.target_attentions[1].shape == (2, 4, target_length, 2 + target_length)
    torch.testing.assert_close(output.attentions[0].sum(-1), torch.ones(2, 4, length))
    assert torch.all(output.attentions[1][1, :, :, -1] == 0)  # the padded last token of the second text
    # Nothing is recorded unless asked (or set in the config); a list of indices keeps only those.
    plain = model(ids, mask, target_input_ids=targets)
    assert plain.hidden_states is None and plain.attentions is None
    every = model.encode(ids, mask, output_hidden_states=True).hidden_states
    selected = model.encode(ids, mask, output_hidden_states=[0, -1]).hidden_states
    assert selected[1] is None and torch.equal(selected[0], every[0]) and torch.equal(selected[2], every[2])
    model.config.output_attentions = True
    assert len(model.encode(ids, mask).attentions) == 2


@torch.no_grad()
def test_inputs_embeds_replace_the_word_embeddings(tiny_model):
    ids, mask = pad_token_sequences([[3, 4, 49407], [5, 49407]])
    pixels = images(tiny_model.config)
    targets = torch.tensor([[6, 49407], [7, 49407]])
    from_ids = tiny_model(ids, mask, pixel_values=pixels, target_input_ids=targets)
    embeds = tiny_model.get_input_embeddings()(ids)
    from_embeds = tiny_model(attention_mask=mask, pixel_values=pixels, target_input_ids=targets, inputs_embeds=embeds)
    torch.testing.assert_close(from_embeds.logits, from_ids.logits)
    assert tiny_model.default_task(pixels, embeds) == "downstream"
    with pytest.raises(ValueError, match="not both"):
        tiny_model(ids, inputs_embeds=embeds, target_input_ids=targets)
    with pytest.raises(ValueError, match="32 features"):
        tiny_model(inputs_embeds=torch.randn(1, 3, 8), target_input_ids=targets)


def test_resizing_the_vocabulary_keeps_the_special_ids(tiny_model):
    tiny_model.resize_token_embeddings(49411 + 5)
    assert tiny_model.config.vocab_size == 49416
    tiny_model.resize_token_embeddings(49411)
    with pytest.raises(ValueError, match=r"would drop the special ids .*'spe_token_id': 49410.*keep at least 49411"):
        tiny_model.resize_token_embeddings(49410)
    assert tiny_model.get_input_embeddings().num_embeddings == 49411


@torch.no_grad()
def test_cpu_and_disk_offload_give_the_same_logits(tiny_config, tmp_path):
    """Offloading hooks bring a module's weights in only around its own forward: every parameter has to be used
    there (the head's scales and projection, the temporal table, the prompts, the `<SPE>` bias)."""
    from accelerate import cpu_offload

    model = prompt_tuned_tiny_model(tiny_config)
    inputs = dict(
        input_ids=torch.tensor([[3, 49410, 49407], [5, 6, 49407]]),
        pixel_values=images(model.config, frames=2),
        target_input_ids=torch.tensor([[7, 49407], [49410, 49407]]),
    )
    expected = model(**inputs).logits
    model.save_pretrained(tmp_path / "model")

    everything = UniPerceiverModel.from_pretrained(tmp_path / "model").eval()
    cpu_offload(everything, execution_device=torch.device("cpu"))
    assert everything.head.projection.weight.device.type == "meta"
    torch.testing.assert_close(everything(**inputs).logits, expected)

    device_map = {
        "embeddings.text": "cpu",
        "embeddings.visual": "disk",
        "embeddings.layer_norm": "cpu",
        "embeddings.dropout": "cpu",
        "encoder": "cpu",
        "head": "disk",
    }
    on_disk = UniPerceiverModel.from_pretrained(
        tmp_path / "model", device_map=device_map, offload_folder=tmp_path / "offload"
    ).eval()
    assert on_disk.embeddings.visual.temporal_position_embeddings.weight.device.type == "meta"
    torch.testing.assert_close(on_disk(**inputs).logits, expected)

    # `device_map="auto"` under a CPU budget that holds the embeddings and a little more: the rest goes to disk.
    budget = sum(p.numel() * p.element_size() for p in model.embeddings.parameters()) + 64 * 1024
    auto = UniPerceiverModel.from_pretrained(
        tmp_path / "model", device_map="auto", max_memory={"cpu": budget}, offload_folder=tmp_path / "offload_auto"
    ).eval()
    assert "disk" in auto.hf_device_map.values()
    torch.testing.assert_close(auto(**inputs).logits, expected)


# ----------------------------------------------------------------------------------------------------------------------
# Bad input: a ValueError (TypeError for a wrong type) that names the argument


def bad_inputs(config):
    """name -> (model keyword arguments, regex the error must match[, error type, default ValueError])."""
    pixels = images(config)
    ids = torch.tensor([[3, 4, 49407]])
    nan, inf = float("nan"), float("inf")
    return {
        "pixel_values rank": (dict(pixel_values=torch.randn(3, 32, 32)), "pixel_values"),
        "pixel_values channels": (dict(pixel_values=torch.randn(2, 1, 32, 32)), "3 channels"),
        "pixel_values size": (dict(pixel_values=torch.randn(2, 3, 48, 48)), "32x32"),
        "pixel_values integer": (dict(pixel_values=torch.zeros(2, 3, 32, 32, dtype=torch.uint8)), "floating-point"),
        "too many frames": (dict(pixel_values=images(config, frames=5)), "temporal position table"),
        "text too long": (dict(input_ids=torch.ones(1, 25, dtype=torch.long)), "max_position_embeddings"),
        "input_ids rank": (dict(input_ids=torch.ones(3, dtype=torch.long)), "input_ids"),
        "input_ids float": (dict(input_ids=torch.ones(1, 3)), "input_ids"),
        "input_ids out of vocabulary": (dict(input_ids=torch.tensor([[49411]])), "input_ids"),
        "all padding": (dict(input_ids=ids, attention_mask=torch.zeros(1, 3, dtype=torch.long)), "attention_mask"),
        "attention_mask shape": (dict(input_ids=ids, attention_mask=torch.ones(1, 4)), "attention_mask"),
        "feature_index outside": (dict(input_ids=ids, feature_index=torch.tensor([3])), "feature_index"),
        "feature_index negative": (dict(input_ids=ids, feature_index=torch.tensor([-1])), "feature_index"),
        "feature_index shape": (dict(input_ids=ids, feature_index=torch.tensor([0, 1])), "feature_index"),
        "feature_index without text": (dict(pixel_values=pixels, feature_index=torch.tensor([0, 0])), "feature_index"),
        "position_ids beyond table": (dict(input_ids=ids, position_ids=torch.tensor([[0, 1, 24]])), "position_ids"),
        "batch mismatch": (dict(input_ids=ids, pixel_values=pixels), "batch size"),
        "nothing": (dict(), "input_ids"),
        "unknown task": (dict(pixel_values=pixels, task="imagenet"), "task"),
        "target_embeds width": (dict(pixel_values=pixels, target_embeds=torch.randn(3, 7)), "target_embeds"),
        "labels shape": (dict(pixel_values=pixels, labels=torch.tensor([0])), "labels"),
        "pixel_values NaN": (dict(pixel_values=pixels.index_fill(1, torch.tensor([0]), nan)), "pixel_values.*NaN"),
        "pixel_values inf in a video": (dict(pixel_values=images(config, frames=2) * inf), "pixel_values.*infinite"),
        "pixel_values empty batch": (dict(pixel_values=torch.zeros(0, 3, 32, 32)), "pixel_values.*empty"),
        "target_pixel_values NaN": (
            dict(pixel_values=pixels, target_pixel_values=pixels * nan),
            "target_pixel_values",
        ),
        "input_ids empty batch": (dict(input_ids=torch.zeros(0, 3, dtype=torch.long)), "input_ids.*empty"),
        "input_ids no tokens": (dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), "input_ids.*empty"),
        "inputs_embeds NaN": (dict(inputs_embeds=torch.full((1, 2, 32), nan)), "inputs_embeds.*NaN"),
        "target_embeds NaN": (dict(pixel_values=pixels, target_embeds=torch.full((3, 32), nan)), "target_embeds.*NaN"),
        "target_embeds inf": (dict(pixel_values=pixels, target_embeds=torch.full((3, 32), -inf)), "target_embeds"),
        "target_embeds empty": (dict(pixel_values=pixels, target_embeds=torch.zeros(0, 32)), "target_embeds.*empty"),
        "target_embeds integer": (
            dict(pixel_values=pixels, target_embeds=torch.zeros(3, 32, dtype=torch.long)),
            "target_embeds.*int",
            TypeError,
        ),
        "target_embeds list": (
            dict(pixel_values=pixels, target_embeds=[[0.0] * 32]),
            "target_embeds.*list",
            TypeError,
        ),
        "labels beyond targets": (dict(pixel_values=pixels, labels=torch.tensor([0, 1])), r"labels.*\[0, 1\).*\[1\]"),
        "labels negative": (dict(pixel_values=pixels, labels=torch.tensor([-1, 0])), r"labels.*-100"),
        "labels float": (dict(pixel_values=pixels, labels=torch.tensor([0.0, 0.0])), "labels.*float32", TypeError),
        "labels list": (dict(pixel_values=pixels, labels=[0, 0]), "labels.*list", TypeError),
        "task not a string": (dict(pixel_values=pixels, task=["img_cls"]), "task"),
    }


@pytest.mark.parametrize("case", list(bad_inputs(UniPerceiverConfig(image_size=32, num_frames=4))))
def test_bad_input_gets_a_clear_value_error(tiny_model, case):
    kwargs, message, *error = bad_inputs(tiny_model.config)[case]
    kwargs.setdefault("target_input_ids", torch.tensor([[3, 49407]]))
    if "target_embeds" in kwargs or "target_pixel_values" in kwargs:
        kwargs.pop("target_input_ids")
    with pytest.raises(error[0] if error else ValueError, match=message):
        tiny_model(**kwargs)


def random_tensor(rng: random.Random) -> torch.Tensor:
    """A tensor of random rank (0-6), sizes (0-33), dtype and values (normal, large, negative ids, NaN, inf)."""
    shape = [rng.choice([0, 1, 2, 3, 4, 32, 33]) for _ in range(rng.randint(0, 6))]
    dtype = rng.choice(
        [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.long, torch.int8, torch.bool]
    )
    values = torch.randn(shape, generator=torch.Generator().manual_seed(rng.randrange(2**31))) * rng.choice([1, 100])
    if rng.random() < 0.2:
        values.view(-1)[: rng.randint(0, values.numel())] = rng.choice([float("nan"), float("inf")])
    if not dtype.is_floating_point:
        values = values.nan_to_num(0, 0, 0) * rng.choice([1, 1000, 1e6])
    return values.to(dtype)


@torch.no_grad()
def test_random_inputs_give_finite_outputs_of_the_documented_shapes_or_a_clear_error(tiny_model):
    """Property: whatever tensors arrive, `model(...)` returns finite logits `[N_inputs, N_targets]` or raises
    ValueError / TypeError (never another error, never NaN)."""
    rng, outcomes = random.Random(0), {"ok": 0, "refused": 0}
    targets = torch.tensor([[3, 49407], [4, 49407], [5, 49407]])
    for _ in range(120):
        names = ["pixel_values", "input_ids", "attention_mask", "feature_index", "labels"]
        kwargs = {name: random_tensor(rng) for name in rng.sample(names, rng.randint(1, 3))}
        if rng.random() < 0.5 and "pixel_values" in kwargs:  # a well-formed image batch, to get past the shape checks
            kwargs["pixel_values"] = torch.randn(rng.randint(1, 3), 3, 32, 32) * rng.choice([1, 100])
        try:
            output = tiny_model(**kwargs, target_input_ids=targets)
        except (ValueError, TypeError):
            outcomes["refused"] += 1
            continue
        outcomes["ok"] += 1
        assert output.logits.shape[1] == 3 and torch.isfinite(output.logits).all(), kwargs
    assert outcomes["ok"] and outcomes["refused"], outcomes


def test_bad_target_side_names_the_target_argument(tiny_model):
    with pytest.raises(ValueError, match="target_pixel_values"):
        tiny_model(pixel_values=images(tiny_model.config), target_pixel_values=torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="target_input_ids"):
        tiny_model(pixel_values=images(tiny_model.config), target_attention_mask=torch.ones(2, 3))


@torch.no_grad()
def test_clip_style_feature_aliases(tiny_model):
    """transformers' CLIP convention: a `BaseModelOutputWithPooling` whose `pooler_output` holds the features."""
    pixels, ids = images(tiny_model.config), torch.tensor([[5, 6, 49407], [7, 49407, 0]])
    mask = (ids != 0).long()
    image = tiny_model.get_image_features(pixels)
    assert torch.equal(image.pooler_output, tiny_model.get_features(pixel_values=pixels))
    assert image.last_hidden_state.shape == (2, 1 + 4, 32)
    video = images(tiny_model.config, frames=2)
    assert torch.equal(tiny_model.get_video_features(video).pooler_output, tiny_model.get_features(pixel_values=video))
    text = tiny_model.get_text_features(ids, mask).pooler_output
    assert torch.equal(text, tiny_model.get_features(ids, mask, is_target=True))
    logits = tiny_model(pixel_values=pixels, target_input_ids=ids, target_attention_mask=mask).logits
    torch.testing.assert_close(image.pooler_output @ text.T * tiny_model.head.logit_scales("img_cls"), logits)
    assert isinstance(tiny_model.get_image_features(pixels, return_dict=False), tuple)


def test_attention_maps_need_eager_attention(tiny_config, monkeypatch):
    from uniperceiver_hf import modeling_uniperceiver

    warnings = []
    monkeypatch.setattr(modeling_uniperceiver.logger, "warning_once", warnings.append)
    model = UniPerceiverModel(UniPerceiverConfig(**tiny_config.to_diff_dict(), attn_implementation="sdpa")).eval()
    assert not model.encode(pixel_values=images(model.config), output_attentions=True).attentions
    assert len(warnings) == 1 and "needs eager attention" in warnings[0]
    model.set_attn_implementation("eager")
    assert len(model.encode(pixel_values=images(model.config), output_attentions=True).attentions) == 2


class _Features(torch.nn.Module):
    """`get_features` as a module's forward, for `torch.export`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        return self.model.get_features(**inputs)


@torch.no_grad()
def test_image_and_text_paths_compile_whole_and_export(tiny_model):
    """The value checks that read tensor contents are skipped while tracing: one graph, no data-dependent branch."""
    ids = torch.tensor([[5, 6, 49407], [7, 49407, 0]])
    for inputs in (
        dict(pixel_values=images(tiny_model.config)),
        dict(input_ids=ids, attention_mask=(ids != 0).long()),
    ):
        eager = tiny_model.get_features(**inputs)
        torch._dynamo.reset()
        compiled = torch.compile(tiny_model.get_features, fullgraph=True, backend="eager")(**inputs)
        exported = torch.export.export(_Features(tiny_model), (), inputs).module()(**inputs)
        torch.testing.assert_close(compiled, eager)
        torch.testing.assert_close(exported, eager)
    with pytest.raises(ValueError, match="ids in"):  # eager callers keep the check
        tiny_model.get_features(input_ids=torch.tensor([[-1, 5]]))


@torch.no_grad()
def test_the_default_model_at_another_resolution():
    """`interpolate_pos_encoding=True` and loading with another `image_size` build the same table (CLIP's pipeline
    class passes the flag through); the scale keeps the span of the training grid."""
    from pathlib import Path

    from uniperceiver_hf import UniPerceiverForZeroShotImageClassification

    folder = Path(__file__).resolve().parents[1] / "models" / "uniperceiver-tiny-emoji"
    native = UniPerceiverModel.from_pretrained(folder).eval()
    resized = UniPerceiverModel.from_pretrained(folder, image_size=96).eval()
    assert resized.config.spatial_position_scale == pytest.approx(native.config.spatial_position_scale * 4 / 6)
    pixels = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    expected = resized.get_image_features(pixels).pooler_output
    torch.testing.assert_close(
        native.get_image_features(pixels, interpolate_pos_encoding=True).pooler_output, expected, atol=1e-6, rtol=0
    )
    clip_style = UniPerceiverForZeroShotImageClassification.from_pretrained(folder).eval()
    ids = torch.tensor([[320, 1929, 49407]])
    output = clip_style(input_ids=ids, pixel_values=pixels, interpolate_pos_encoding=True)
    torch.testing.assert_close(output.image_embeds, expected, atol=1e-6, rtol=0)


def test_peft_lora_on_the_fused_projections_of_the_default_model(tmp_path):
    """`get_peft_model` with the documented `target_modules` wraps every layer's fused q|k|v, output and MLP linears;
    at initialisation the model is unchanged, and a saved adapter loads back onto a fresh base."""
    from pathlib import Path

    from peft import LoraConfig, PeftModel, get_peft_model

    folder = Path(__file__).resolve().parents[1] / "models" / "uniperceiver-tiny-emoji"
    base = UniPerceiverModel.from_pretrained(folder).eval()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = base.get_features(pixel_values=pixels)
    targets = ["in_proj", "out_proj", "fc1", "fc2"]
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=targets))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    layers = base.config.num_hidden_layers
    assert len(trainable) == 2 * len(targets) * layers and all(".lora_" in name for name in trainable)
    lora_qkv = model.get_base_model().encoder.layers[0].self_attn.in_proj
    assert lora_qkv.lora_B["default"].weight.shape == (3 * base.config.hidden_size, 2)  # fused q|k|v rows
    with torch.no_grad():
        torch.testing.assert_close(model.get_features(pixel_values=pixels), plain)
        for name, parameter in model.named_parameters():
            if ".lora_B." in name:
                parameter.normal_(0, 0.05)
        adapted = model.get_features(pixel_values=pixels)
    assert not torch.allclose(adapted, plain)
    model.save_pretrained(tmp_path)
    reloaded = PeftModel.from_pretrained(UniPerceiverModel.from_pretrained(folder).eval(), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.get_features(pixel_values=pixels), adapted)
