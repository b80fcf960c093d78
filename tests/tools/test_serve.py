"""`uniperceiver-hf serve` on loopback: text, image and video queries answered as the pipeline answers them, bad
requests refused with a 4xx status and a message."""

import base64
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline

from uniperceiver_hf.tools.extract import extract
from uniperceiver_hf.tools.index import build_index_folder
from uniperceiver_hf.tools.serve import SearchService, make_server, search_service


MODEL = str(Path(__file__).resolve().parents[2] / "models" / "uniperceiver-tiny-emoji")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    """An exact index of 24 captions, ids "c00".."c23"."""
    import datasets

    root = tmp_path_factory.mktemp("serve_data")
    captions = [
        f"a {c} {t}" for c in ("red", "green", "blue", "yellow") for t in ("dog", "car", "tree", "ball", "cat", "star")
    ]
    datasets.Dataset.from_dict({"text": captions, "key": [f"c{i:02d}" for i in range(24)]}).save_to_disk(
        str(root / "captions")
    )
    features = extract(MODEL, str(root / "captions"), "text", root / "features", id_column="key", progress=False)
    return build_index_folder(features, root / "index")


@pytest.fixture(scope="module")
def service_url(index_dir):
    server = make_server(SearchService(index_dir, MODEL), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/search", data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_answers_equal_the_pipeline(index_dir, service_url, make_video, tmp_path):
    pipe = pipeline("zero-shot-perception", model=MODEL)
    image = Image.fromarray(np.tile(np.arange(48, dtype=np.uint8)[:, None, None] * 5, (1, 40, 3)))
    image.save(tmp_path / "query.png")
    video = make_video("query.mp4", num_frames=12, size=(40, 32))
    for query, arguments in (
        ({"text": "a red dog"}, {"text": "a red dog"}),
        (image, {"image": tmp_path / "query.png"}),
        (str(video), {"video": video}),
    ):
        expected = pipe(query, candidate_set=str(index_dir), top_k=4)
        answer = search_service(service_url, top_k=4, **arguments)
        assert [a["id"] for a in answer] == [e["label"] for e in expected]
        np.testing.assert_allclose([a["score"] for a in answer], [e["score"] for e in expected], atol=1e-6)
    assert len(search_service(service_url, image=image)) == 10  # the service's default top_k
    with urllib.request.urlopen(service_url + "/info", timeout=60) as response:
        info = json.loads(response.read())
    assert (info["count"], info["kind"], info["modality"]) == (24, "exact", "text")


def test_bad_requests_get_a_4xx_with_a_message(service_url):
    png = base64.b64encode(b"not an image").decode()
    for body, status, message in (
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({"text": "a", "image": png}).encode(), 400, "exactly one query field"),
        (json.dumps({"query": "a"}).encode(), 400, "Unknown fields ['query']"),
        (json.dumps({"text": "a", "top_k": 0}).encode(), 400, "`top_k` must be an integer"),
        (json.dumps({"text": "  "}).encode(), 400, "non-empty string"),
        (json.dumps({"image": "%%%"}).encode(), 400, "not valid base64"),
        (json.dumps({"image": png}).encode(), 400, "not a readable image"),
        (json.dumps({"video": png}).encode(), 400, "video"),
        (json.dumps({"video": png, "video_format": "exe"}).encode(), 400, "`video_format` must be one of"),
    ):
        code, payload = post(service_url, body)
        assert code == status and message in payload["error"], (body, code, payload)
    request = urllib.request.Request(service_url + "/nowhere", b"{}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 404 and "POST /search" in json.loads(caught.value.read())["error"]
    with pytest.raises(ValueError, match=r"refused the request \(400\): .*`top_k`"):
        search_service(service_url, text="a dog", top_k=10_000)
