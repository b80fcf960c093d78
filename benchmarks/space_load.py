"""Load on the Gradio Space: `requests` calls, `concurrency` at a time, through `gradio_client` to the running app.

    python benchmarks/space_load.py [--requests 200] [--concurrency 8] [--model DIR] [--batch both|on|off]

Starts `spaces_demo/app.py` on a free loopback port, sends a mix of the tabs' cheap requests (an image, a video, a
text and a VQA question against labels; text-to-image retrieval) and prints requests/s, the p50/p95 latency, the CPU
time the app and the client spent per request, and the app's resident memory after the first 20 requests and after
all of them. By default it runs the app twice, back to back: with each request answered by its own model call
(`UNIPERCEIVER_SPACE_BATCH=0`, before) and with the ranking tabs' requests batched (after), and prints their ratio.
tests/test_spaces_demo.py runs the same load and asserts that every request succeeds and memory stays flat.
"""

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
from gradio_client import Client, handle_file


ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "spaces_demo" / "app.py"
WARMUP = 20  # requests before the baseline memory reading


@contextlib.contextmanager
def running_app(
    model: str | None = None, startup_timeout: float = 240.0, log_path: Path | None = None, batch: bool = True
):
    """`(url, pid)` of `spaces_demo/app.py` serving on a free 127.0.0.1 port (its ranking tabs batched unless
    `batch=False`); stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        UNIPERCEIVER_SPACE_BATCH="1" if batch else "0",
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    if model:
        env["UNIPERCEIVER_MODEL"] = model
    log_path = log_path or Path(tempfile.mkdtemp(prefix="space-log-")) / "app.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, startup_timeout, log_path)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    """Polls `url` until the app answers; fails with the app's last output if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The app exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            return
        time.sleep(1)
    raise TimeoutError(f"The app did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def request_mix(files: dict[str, str]) -> list[tuple[str, tuple]]:
    """`(api_name, arguments)` for each kind of cheap request, cycled through by the load."""
    image, digit, clip = files["drawn: red circle"], files["handwritten seven"], files["clip"]
    shapes = "red circle, blue square, yellow circle, green square"
    return [
        ("/classify", (handle_file(image), None, "", shapes, "{}", [])),
        ("/classify", (None, handle_file(clip), "", "moving left, moving right, growing, shrinking", "{}", [])),
        ("/classify", (None, None, "a fortune about computers", "computers, food, law", "{}", [])),
        ("/vqa", (handle_file(digit), "what number is this?", "three, seven, nine")),
        ("/text_to_images", ("red circle",)),
    ]


@dataclass
class LoadResult:
    latencies: list[float]  # seconds per request, in completion order
    seconds: float  # wall time of the whole run
    failures: list[str]  # the error of each failed request
    rss_after_warmup: int  # bytes, after the first WARMUP requests
    rss_after: int  # bytes, after all requests
    outputs: list  # each successful request's result
    app_cpu: float  # CPU seconds the app spent during the run
    client_cpu: float  # CPU seconds this process (the clients) spent during the run

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1]

    @property
    def growth(self) -> float:
        """The resident memory's growth from after the warm-up to the end, as a fraction."""
        return self.rss_after / self.rss_after_warmup - 1


def run_load(url: str, pid: int, files: dict[str, str], requests: int = 200, concurrency: int = 8) -> LoadResult:
    """`requests` calls cycling through `request_mix`, `concurrency` in flight; memory read after warm-up and at end."""
    mix = request_mix(files)
    local = threading.local()
    latencies, failures, outputs = [], [], []

    def call(index: int) -> None:
        if not hasattr(local, "client"):
            # No certificate checks on plain-http loopback: with them, gradio_client's httpx reads the CA bundle for
            # each of its per-request connections (~20 ms of CPU a request), on the cores the app runs on.
            local.client = Client(url, verbose=False, download_files=False, ssl_verify=False)
        api_name, arguments = mix[index % len(mix)]
        start = time.perf_counter()
        try:
            outputs.append(local.client.predict(*arguments, api_name=api_name))
            latencies.append(time.perf_counter() - start)
        except Exception as error:  # noqa: BLE001 (every failure is counted and reported, whatever its kind)
            failures.append(f"{api_name}: {error}")

    app, client = psutil.Process(pid), psutil.Process()
    app_start, client_start = sum(app.cpu_times()[:2]), sum(client.cpu_times()[:2])
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, range(min(WARMUP, requests))))
        rss_after_warmup = app.memory_info().rss
        list(pool.map(call, range(WARMUP, requests)))
    seconds = time.perf_counter() - start
    app_cpu, client_cpu = sum(app.cpu_times()[:2]) - app_start, sum(client.cpu_times()[:2]) - client_start
    return LoadResult(
        latencies, seconds, failures, rss_after_warmup, app.memory_info().rss, outputs, app_cpu, client_cpu
    )


def example_files(folder: Path) -> dict[str, str]:
    """The inputs the load sends: the app's own examples, drawn offline."""
    sys.path.insert(0, str(APP.parent))
    from app import write_examples  # noqa: PLC0415  (the app's module is imported only when the load needs it)

    return write_examples(folder)


def measure(model: str | None, batch: bool, requests: int, concurrency: int) -> LoadResult:
    """One load run on a freshly started app."""
    with tempfile.TemporaryDirectory() as folder, running_app(model, batch=batch) as (url, pid):
        return run_load(url, pid, example_files(Path(folder)), requests, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", help="a model folder or Hub id (default: the app's default model)")
    parser.add_argument("--batch", choices=["both", "on", "off"], default="both", help="which app(s) to load")
    args = parser.parse_args()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.batch]
    results = {batch: measure(args.model, batch, args.requests, args.concurrency) for batch in modes}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\n{args.requests} requests, {args.concurrency} at a time, client and app sharing {cores} usable core(s)")
    print(
        "| app | requests/s | p50 (s) | p95 (s) | failures | app CPU/request (ms) | client CPU/request (ms) "
        "| RSS after 20 (MB) | RSS after all (MB) | growth |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch, result in results.items():
        done = max(1, len(result.latencies))
        print(
            f"| {'batched' if batch else 'one call per request'} | {result.requests_per_second:.1f} | "
            f"{result.percentile(50):.3f} | {result.percentile(95):.3f} | {len(result.failures)} | "
            f"{result.app_cpu / done * 1000:.0f} | {result.client_cpu / done * 1000:.0f} | "
            f"{result.rss_after_warmup / 2**20:.0f} | {result.rss_after / 2**20:.0f} | {result.growth:+.1%} |"
        )
    if len(results) == 2:
        before, after = results[False], results[True]
        app_cpu = (after.app_cpu / len(after.latencies)) / (before.app_cpu / len(before.latencies))
        print(
            f"| after / before | {after.requests_per_second / before.requests_per_second:.2f}x | "
            f"{after.percentile(50) / before.percentile(50):.2f}x | {after.percentile(95) / before.percentile(95):.2f}x "
            f"| | {app_cpu:.2f}x | | | | |"
        )
    for result in results.values():
        for failure in result.failures[:5]:
            print("failure:", failure)


if __name__ == "__main__":
    main()
