"""transformers' `ProcessorTesterMixin` (of the installed version, unmodified) on UniPerceiverProcessor.

Every upstream test that does not apply is skipped below with its reason.
"""

import unittest

from transformers_common_tests import use_transformers_common_tests


use_transformers_common_tests("test_processing_common")

from tests.test_processing_common import ProcessorTesterMixin  # noqa: E402

from uniperceiver_hf import (  # noqa: E402
    UniPerceiverImageProcessor,
    UniPerceiverProcessor,
    UniPerceiverTokenizer,
    UniPerceiverVideoProcessor,
)
from uniperceiver_hf.processing_uniperceiver import UniPerceiverProcessorKwargs  # noqa: E402


class FusedCallProcessor(UniPerceiverProcessor):
    """Upstream's kwargs tests call `processor(text=..., images=...)`, which names no task; ours refuses that call
    (CLIP's form, easy to misread) unless `task=` says which layout. They exercise the fused visual + text sequence
    of VQA (`downstream`), so that is the task given here."""

    def __call__(self, *args, **kwargs):
        if kwargs.get("text") is not None and (kwargs.get("images") is not None or kwargs.get("videos") is not None):
            kwargs.setdefault("task", "downstream")
        return super().__call__(*args, **kwargs)


# Upstream finds a processor's kwargs class by the processor's name in its module.
FusedCallProcessorKwargs = UniPerceiverProcessorKwargs


class UniPerceiverProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = FusedCallProcessor
    # One side holds an image or a video; both come out as `pixel_values`.
    videos_input_name = "pixel_values"

    @classmethod
    def _setup_image_processor(cls):
        return UniPerceiverImageProcessor()

    @classmethod
    def _setup_tokenizer(cls):
        return UniPerceiverTokenizer()

    @classmethod
    def _setup_video_processor(cls):
        return UniPerceiverVideoProcessor()

    def get_component(self, attribute, **kwargs):
        # AutoVideoProcessor needs torchvision for every class; the video processor loads with its own class.
        if attribute == "video_processor":
            return UniPerceiverVideoProcessor.from_pretrained(self.tmpdirname, **kwargs)
        return super().get_component(attribute, **kwargs)

    # A Uni-Perceiver sequence holds one visual input: these tests pass an image and a video to one call.
    ONE_VISUAL_INPUT = "a sequence holds an image or a video, not both (both are `pixel_values`)"

    @unittest.skip(ONE_VISUAL_INPUT)
    def test_model_input_names(self):
        pass

    @unittest.skip(ONE_VISUAL_INPUT)
    def test_processor_with_multiple_inputs(self):
        pass

    @unittest.skip("every row of a batch has the same inputs (one `pixel_values`): no rows without the image")
    def test_processor_text_has_no_visual(self):
        pass

    @unittest.skip(ONE_VISUAL_INPUT)
    def test_flat_kwarg_applied_when_modality_dict_lacks_it(self):
        pass

    @unittest.skip(
        "the views of a video (3 crops) become rows of `pixel_values`; the video processor keeps a views axis"
    )
    def test_subprocessor_defaults_2_videos(self):
        pass

    @unittest.skip("loads the video processor with AutoVideoProcessor, which needs torchvision for every class")
    def test_processor_from_and_save_pretrained_as_nested_dict(self):
        pass
