"""``vlprune serve`` end to end: vLLM's OpenAI-compatible server on a tiny checkpoint, bound to
127.0.0.1, driven by the real OpenAI client with base64 screenshots."""

from __future__ import annotations

import base64
import io
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: the serving suite runs in the venv that "
                                   "scripts/vllm-env makes")
openai = pytest.importorskip("openai", reason="the openai client is not installed")

from harness import Family, Reference, corpus_image, selected_counts, write  # noqa: E402

FAMILY = Family("qwen2-vl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ckpt = write(tmp_path_factory.mktemp("serve"), FAMILY)
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    cmd = [sys.executable, "-m", "vlprune", "serve", str(ckpt), "--method", "pixelprune", "--",
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager",
           "--max-model-len", "4096", "--kv-cache-memory-bytes", str(256 * 2**20),
           "--limit-mm-per-prompt", '{"image": 2, "video": 0}', "--trust-request-mm-kwargs"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 900
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vlprune serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"the server did not come up in 15 minutes:\n{log.read_text()[-4000:]}")
            time.sleep(2)
        yield dict(ckpt=ckpt, port=port, log=log,
                   client=openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused"))
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _png(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _ask(server, url: str, **extra):
    return server["client"].chat.completions.create(
        model=str(server["ckpt"]), max_tokens=3, temperature=0, extra_body=extra or None,
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                               {"type": "text", "text": "What is on the screen?"}]}])


def test_prompt_tokens_are_the_pruned_count_and_bad_images_fail_alone(server):
    shot = corpus_image("web/flask_index.png")
    ref = Reference.load(server["ckpt"], FAMILY)
    text = ref.prompt(1, "What is on the screen?")
    full = ref.processor(text=[text], images=[shot], return_tensors="pt")
    n_image = int((full["input_ids"] == ref.model.config.image_token_id).sum())
    (kept,) = selected_counts(ref, [shot])
    assert kept < n_image

    reply = _ask(server, _png(shot))
    assert reply.usage.prompt_tokens == full["input_ids"].shape[1] - n_image + kept

    with pytest.raises(openai.BadRequestError) as exc:
        _ask(server, "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n not an image").decode())
    assert "image" in str(exc.value).lower()
    with pytest.raises(openai.BadRequestError, match="tau must be in"):
        _ask(server, _png(shot), mm_processor_kwargs={"vlprune": {"method": "pixelprune", "pixelprune.tau": 7}})

    again = _ask(server, _png(shot))  # the server goes on
    assert again.usage.prompt_tokens == reply.usage.prompt_tokens
    unpruned = _ask(server, _png(shot), mm_processor_kwargs={"vlprune": {"method": "full"}})
    assert unpruned.usage.prompt_tokens == full["input_ids"].shape[1]


def test_the_plugin_loads_in_every_process(server):
    """The engine core and its worker log the registration (the API server registers before vLLM sets up
    its logging there; that it resolved the plug-in's architecture is shown by the pruned requests)."""
    lines = [ln for ln in server["log"].read_text().splitlines() if "vlprune plug-in:" in ln]
    pids = {re.search(r"in process (\d+)", ln).group(1) for ln in lines}
    kinds = {re.match(r"\((\w+)", ln).group(1) for ln in lines if ln.startswith("(")}
    assert len(pids) >= 2 and "EngineCore" in kinds and any(k.startswith(("Worker", "VllmWorker")) for k in kinds), lines
    assert _ask(server, _png(corpus_image("web/flask_index.png"))).usage.prompt_tokens > 0
