"""UniPerceiverConfig: presets, validation and serialisation."""

import json
import math

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from uniperceiver_hf import UniPerceiverConfig
from uniperceiver_hf.configuration_uniperceiver import LOGIT_SCALE_TASKS


def test_defaults_are_the_released_base_model():
    config = UniPerceiverConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (
        768,
        12,
        12,
        3072,
    )
    assert (config.vocab_size, config.max_position_embeddings, config.type_vocab_size) == (49411, 512, 2)
    assert (config.image_size, config.patch_size, config.num_frames, config.num_patches) == (224, 16, 8, 196)
    assert config.hidden_act == "gelu" and config.layer_norm_eps == 1e-5 and config.layer_scale_init_value == 1e-3
    assert config.spatial_position_scale == pytest.approx(160 / 224)
    assert (config.spe_token_id, config.eos_token_id, config.pad_token_id) == (49410, 49407, 0)
    assert config.logit_scale_tasks == list(LOGIT_SCALE_TASKS) and len(LOGIT_SCALE_TASKS) == 11
    assert config.logit_scale_init_value == pytest.approx(math.log(1 / 0.07)) and config.logit_scale_max == 100.0
    assert config.projection_dim == 768 and config.num_prompt_tokens == 0
    # The options that are not the original's are off.
    assert config.temporal_initializer_range is None and not config.temporal_difference_embedding
    assert not config.convolutional_stem


def test_presets():
    large = UniPerceiverConfig.from_preset("large")
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads, large.intermediate_size) == (
        1024,
        24,
        16,
        4096,
    )
    assert large.projection_dim == 1024 and large.drop_path_rate == 0.2
    assert UniPerceiverConfig.from_preset("base", num_prompt_tokens=10).num_prompt_tokens == 10
    with pytest.raises(ValueError, match="must be one of"):
        UniPerceiverConfig.from_preset("huge")


@pytest.mark.parametrize(
    "overrides,fields",
    [
        (dict(hidden_size=100), ["hidden_size", "num_attention_heads"]),
        (dict(image_size=100), ["image_size", "patch_size"]),
        (dict(hidden_act="swishy"), ["hidden_act"]),
        (dict(num_frames=0), ["num_frames"]),
        (dict(drop_path_rate=1.5), ["drop_path_rate"]),
        (dict(logit_scale_max=0.0), ["logit_scale_max"]),
        (dict(spe_token_id=50000), ["spe_token_id", "vocab_size"]),
        (dict(logit_scale_tasks=["img_cls", "img_cls"]), ["logit_scale_tasks"]),
        (dict(num_prompt_tokens=-1), ["num_prompt_tokens"]),
        # Non-finite or out-of-range floats would give NaN logits or a torch error later.
        (dict(layer_norm_eps=0.0), ["layer_norm_eps"]),
        (dict(layer_norm_eps=-1e-5), ["layer_norm_eps"]),
        (dict(layer_norm_eps=math.nan), ["layer_norm_eps"]),
        (dict(layer_norm_eps=math.inf), ["layer_norm_eps"]),
        (dict(logit_scale_init_value=math.nan), ["logit_scale_init_value"]),
        (dict(logit_scale_init_value=-math.inf), ["logit_scale_init_value"]),
        (dict(logit_scale_max=math.nan), ["logit_scale_max"]),
        (dict(initializer_range=-0.02), ["initializer_range"]),
        (dict(initializer_range=math.nan), ["initializer_range"]),
        (dict(temporal_initializer_range=-0.7), ["temporal_initializer_range"]),
        (dict(temporal_initializer_range=math.inf), ["temporal_initializer_range"]),
        (dict(layer_scale_init_value=math.inf), ["layer_scale_init_value"]),
        (dict(spatial_position_scale=0.0), ["spatial_position_scale"]),
        (dict(spatial_position_scale=math.nan), ["spatial_position_scale"]),
        (dict(drop_path_rate=math.nan), ["drop_path_rate"]),
        (dict(image_size=48, patch_size=12, convolutional_stem=True), ["patch_size", "convolutional_stem"]),
        (dict(image_size=32, patch_size=1, convolutional_stem=True), ["patch_size", "convolutional_stem"]),
    ],
)
def test_validate_architecture_names_the_fields(overrides, fields):
    with pytest.raises(StrictDataclassClassValidationError) as error:
        UniPerceiverConfig(**overrides)
    assert isinstance(error.value.__cause__, ValueError)
    for field in fields:
        assert f"`{field}`" in str(error.value)


def test_a_flag_of_another_type_is_refused_by_name():
    with pytest.raises(StrictDataclassFieldValidationError, match="temporal_difference_embedding"):
        UniPerceiverConfig(temporal_difference_embedding="yes")


def test_a_near_miss_of_a_field_name_is_warned_about():
    logger = logging.get_logger("uniperceiver_hf.configuration_uniperceiver")
    with CaptureLogger(logger) as captured:
        config = UniPerceiverConfig(hiden_size=64, some_custom_key=1)
    assert "`hiden_size` is not a config field (did you mean `hidden_size`?)" in captured.out
    assert "some_custom_key" not in captured.out and config.hidden_size == 768


def test_save_and_load_round_trip(tmp_path):
    config = UniPerceiverConfig(hidden_size=64, num_attention_heads=4, num_prompt_tokens=10, num_prompt_classes=6)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "uniperceiver"
    assert saved["auto_map"]["AutoConfig"] == "configuration_uniperceiver.UniPerceiverConfig"
    loaded = UniPerceiverConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
