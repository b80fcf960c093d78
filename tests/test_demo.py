"""The main job (`bash scripts/run_demo.sh` = examples/zero_shot_classification.py) on the shipped default model."""

import re
import sys
from pathlib import Path

import pytest


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import zero_shot_classification as demo  # noqa: E402


@pytest.fixture(scope="module")
def shared_pipeline():
    """The demo's pipeline built once, so that the vocabulary it encodes for captions is encoded once."""
    from transformers import pipeline

    built = pipeline("zero-shot-perception", model=str(demo.DEFAULT_MODEL))
    patch = pytest.MonkeyPatch()
    patch.setattr(demo, "pipeline", lambda *args, **kwargs: built)
    yield built
    patch.undo()


def _ranked(output: str, section: str) -> dict[str, list[str]]:
    """{input name: candidate labels best first} of one section of the demo's output."""
    block = output.split(f"== {section}")[1].split("\n== ")[0]
    ranked, name = {}, None
    for line in block.splitlines()[1:]:
        if line.startswith("    "):
            ranked[name].append(line.split("  ")[2].strip())
        elif line.strip():
            name = line.strip()
            ranked[name] = []
    return ranked


def test_demo_runs_the_default_model_on_every_kind_of_input(shared_pipeline, capsys):
    demo.main([])
    output = capsys.readouterr().out
    assert "Model: the default model uniperceiver-tiny-emoji" in output
    for section in (
        "Images against labels",
        "Handwritten digits",
        "Visual question answering",
        "A clip against",
        "A text against topics",
        "Captions",
        "Retrieval",
    ):
        assert f"== {section}" in output
    shapes = _ranked(output, "Images against labels")
    assert {name: ranked[0] for name, ranked in shapes.items()} == {  # the right emoji name first, zero-shot
        "drawn: red circle": "red circle",
        "drawn: blue square": "blue square",
        "drawn: yellow circle": "yellow circle",
    }
    digits = _ranked(output, "Handwritten digits against the digit names")
    assert set(digits) == {"handwritten three", "handwritten seven"} and all(len(v) == 3 for v in digits.values())
    captions = output.split("== Captions")[1].split("\n== ")[0].splitlines()[1:]
    assert len(captions) == 5 and all(len(line.split()) > 2 for line in captions)


def test_user_images_are_scored_against_the_user_labels_and_captioned(shared_pipeline, tmp_path, capsys):
    path = tmp_path / "circle.png"
    demo.drawn_shapes()["drawn: red circle"].save(path)
    demo.main(["--images", str(path), "--labels", "red circle", "blue square"])
    output = capsys.readouterr().out
    ranked = _ranked(output, "Images against labels")
    assert list(ranked) == [str(path)] and sorted(ranked[str(path)]) == ["blue square", "red circle"]
    assert output.split("== Captions")[1].splitlines()[1].startswith(str(path))
    assert "== Handwritten digits" not in output


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--images", "no/such/picture.png"], r"--images: no such file: no/such/picture\.png"),
        (["--labels", "red circle", " "], r"label.*empty|empty.*label"),
        (["--labels"], r"--labels: expected at least one argument"),
        (["--model", "no/such/folder"], r"--model: no such folder: no/such/folder"),
    ],
)
def test_bad_arguments_get_a_message_not_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    code = exit_info.value.code
    assert re.search(message, code if isinstance(code, str) else capsys.readouterr().err, re.IGNORECASE)


def test_an_image_that_cannot_be_decoded_is_named(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(SystemExit, match="broken.png"):
        demo.main(["--images", str(broken)])
