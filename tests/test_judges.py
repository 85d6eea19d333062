"""Judges: the OpenAI-compatible judge against a fake server in a thread (the real client
code path), and the local reward-model judge."""

import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fusekit.arena import judge_prompt, parse_verdict
from fusekit.judges import JudgeBudgetExceeded, LocalJudge, OpenAIJudge, load_judge

KEY = "sk-fusekit-test-0123456789-never-written"
ENV = "FUSEKIT_TEST_JUDGE_KEY"
LOGP_M, LOGP_BIG_M = math.log(0.9), math.log(0.1)


class FakeOpenAI(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``; fails with ``server.fail`` status codes first."""

    def do_POST(self):  # noqa: N802
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append((self.path, self.headers.get("Authorization"), body))
            status = srv.fail.pop(0) if srv.fail else 200
        if status != 200:
            # an error quoting the key, as some servers do
            msg = f"boom for {self.headers.get('Authorization')}"
            self._send(status, {"error": {"message": msg, "type": "server_error"}})
            return
        text = "echo: " + body["messages"][-1]["content"]
        logprobs = None
        if body.get("logprobs"):  # alpaca_eval's weighted annotator: the token m, P(m) = 0.9
            text = "m"
            top = [
                {"token": "m", "bytes": [109], "logprob": LOGP_M},
                {"token": "M", "bytes": [77], "logprob": LOGP_BIG_M},
            ][: body.get("top_logprobs", 2)]
            logprobs = {
                "content": [{"token": "m", "bytes": [109], "logprob": LOGP_M, "top_logprobs": top}]
            }
        self._send(
            200,
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": logprobs,
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )

    def _send(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    srv.requests, srv.fail, srv.lock = [], [], threading.Lock()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(ENV, KEY)


def _judge(server, tmp_path, **kw):
    return OpenAIJudge(
        "judge-model",
        api_key_env=ENV,
        base_url=f"http://127.0.0.1:{server.server_port}/v1",
        cache_path=tmp_path / "cache" / "judge.jsonl",
        backoff_s=0.01,
        defaults={"temperature": 0, "max_tokens": 16},
        **kw,
    )


def _msgs(*texts):
    return [[{"role": "user", "content": t}] for t in texts]


def test_calls_go_through_the_client_and_are_cached(server, tmp_path, key):
    judge = _judge(server, tmp_path)
    assert judge.judge(_msgs("a", "b")) == ["echo: a", "echo: b"]
    path, auth, body = server.requests[0]
    assert path == "/v1/chat/completions" and auth == f"Bearer {KEY}"
    assert body["model"] == "judge-model" and body["temperature"] == 0 and body["max_tokens"] == 16
    # a fresh judge (a rerun after a crash) answers from the disk cache: no second call
    again = _judge(server, tmp_path)
    assert again.judge(_msgs("b", "a")) == ["echo: b", "echo: a"]
    assert len(server.requests) == 2 and again.calls == 0
    # other settings are another request
    again.judge(_msgs("a"), max_tokens=1)
    assert len(server.requests) == 3


@pytest.mark.fault
def test_call_cap_stops_and_a_rerun_goes_on(server, tmp_path, key):
    judge = _judge(server, tmp_path, max_calls=2)
    with pytest.raises(JudgeBudgetExceeded, match="cap of 2 API calls"):
        judge.judge(_msgs("a", "b", "c"))
    assert len(server.requests) == 2
    rerun = _judge(server, tmp_path, max_calls=1)
    assert rerun.judge(_msgs("a", "b", "c")) == ["echo: a", "echo: b", "echo: c"]
    assert len(server.requests) == 3


@pytest.mark.fault
def test_retries_server_errors_with_backoff(server, tmp_path, key, caplog):
    server.fail = [500, 503, 429]
    judge = _judge(server, tmp_path, max_retries=3)
    with caplog.at_level(logging.WARNING, logger="fusekit"):
        assert judge.judge(_msgs("x")) == ["echo: x"]
    assert judge.calls == 4 and len(server.requests) == 4
    assert caplog.text.count("retry") == 3
    # retries count against the cap
    server.fail = [500, 500]
    capped = _judge(server, tmp_path, max_retries=5, max_calls=2)
    with pytest.raises(JudgeBudgetExceeded):
        capped.judge(_msgs("y"))


@pytest.mark.fault
def test_client_errors_are_not_retried(server, tmp_path, key):
    server.fail = [400]
    judge = _judge(server, tmp_path, max_retries=3)
    with pytest.raises(RuntimeError, match="failed after 1 attempt"):
        judge.judge(_msgs("x"))
    assert len(server.requests) == 1
    server.fail = [500, 500]
    judge = _judge(server, tmp_path, max_retries=1)
    with pytest.raises(RuntimeError, match="failed after 2 attempt"):
        judge.judge(_msgs("z"))


@pytest.mark.fault
def test_the_key_is_never_written_or_logged(server, tmp_path, key, caplog):
    server.fail = [500]
    with caplog.at_level(logging.DEBUG):
        judge = _judge(server, tmp_path, parallel=2)
        judge.judge(_msgs("a", "b", "c"))
        server.fail = [400]
        with pytest.raises(RuntimeError) as err:
            judge.judge(_msgs("d"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "nothing was cached"
    for p in files:
        assert KEY not in p.read_text(errors="replace"), p
    assert KEY not in caplog.text and KEY not in str(err.value)
    assert "boom for Bearer <redacted>" in str(err.value)
    server.fail = [401]
    with pytest.raises(RuntimeError, match="message withheld") as err:
        judge.judge(_msgs("e"))
    assert "boom" not in str(err.value)
    assert KEY not in repr(judge.__dict__.get("defaults"))


@pytest.mark.bad_input
def test_missing_key_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RuntimeError, match=ENV):
        OpenAIJudge("m", api_key_env=ENV, cache_path=tmp_path / "c.jsonl")


@pytest.mark.fault
def test_torn_cache_line_is_skipped(server, tmp_path, key):
    _judge(server, tmp_path).judge(_msgs("a"))
    with open(tmp_path / "cache" / "judge.jsonl", "a") as f:
        f.write('{"key": "trunc')
    judge = _judge(server, tmp_path)
    assert judge.judge(_msgs("a")) == ["echo: a"] and judge.calls == 0


def test_api_judge_through_alpaca_evals_weighted_annotator(server, tmp_path, key):
    """The paper-scale AlpacaEval path: alpaca_eval's annotator, our OpenAI judge, the
    config's logprob parser."""
    import pandas as pd

    from fusekit import alpaca

    ref = pd.DataFrame(
        {"dataset": "d", "instruction": ["i1", "i2"], "output": ["r1", "r2"], "generator": "ref"}
    )
    model = ref.assign(output=["o1", "o2"], generator="model")
    judge = _judge(server, tmp_path, max_calls=2)
    ann = alpaca.annotate(model, ref, judge, tmp_path / "run", tmp_path / "cache" / "ae.json")
    body = server.requests[0][2]
    assert body["logprobs"] is True and body["top_logprobs"] == 5 and body["max_tokens"] == 1
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # "m" is the first output shown; alpaca_eval randomises the order and undoes it
    switched = ann.preference.round(6).tolist()
    assert sorted(switched) in ([1.1, 1.1], [1.1, 1.9], [1.9, 1.9])
    again = alpaca.annotate(model, ref, judge, tmp_path / "run", tmp_path / "cache" / "ae.json")
    assert len(server.requests) == 2 and again.preference.tolist() == ann.preference.tolist()


@pytest.mark.fault
def test_api_judge_arena_continues_without_verdict(server, tmp_path, key):
    import pandas as pd

    from fusekit.arena import judge_arena

    questions = pd.DataFrame(
        {"question_id": ["q"], "category": "c", "cluster": "k", "prompt": ["Q"]}
    )
    judge = _judge(server, tmp_path)
    df = judge_arena(questions, {"q": "a"}, {"q": "b"}, "m", "base", judge, attempts=2)
    assert df.score.isna().all()  # the echo server never gives a verdict
    assert len(server.requests) == 4
    assert server.requests[-1][2]["messages"][-1]["content"].startswith("continue your judgment")


# ------------------------------------------------------------------ local judge


@pytest.fixture(scope="module")
def rm_path(tmp_path_factory):
    from fusekit.tiny.corpus import build_corpus, filler_text
    from fusekit.tiny.models import build_model
    from fusekit.tiny.tokenizers import train_tokenizer

    root = tmp_path_factory.mktemp("rm")
    corpus = build_corpus(0, {"pretrain": 30})
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 30), "byte_bpe", 300, "chatml")
    size = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
    rm = build_model(
        "LlamaForSequenceClassification", tok, size | {"max_position": 256}, seed=0, num_labels=1
    )
    rm.save_pretrained(root)
    tok.save_pretrained(root)
    return str(root)


def test_local_judge_writes_arena_verdicts(rm_path):
    judge = LocalJudge(rm_path, {"max_length": 256}, tie=0.0, strong=1e9)
    convs = [judge_prompt("what is 1 + 2 ?", "the answer is 3", "the answer is 7")]
    convs.append(judge_prompt("what is 1 + 2 ?", "the answer is 7", "the answer is 3"))
    texts = judge.judge(convs)
    labels = [parse_verdict(t) for t in texts]
    # no ties, no strong verdicts at these thresholds; swapping the answers swaps the label
    assert set(labels) == {"A>B", "B>A"}
    strong = LocalJudge(rm_path, {"max_length": 256}, tie=0.0, strong=0.0).judge(convs[:1])
    assert parse_verdict(strong[0]) in ("A>>B", "B>>A")
    tie = LocalJudge(rm_path, {"max_length": 256}, tie=1e9, strong=1e9).judge(convs[:1])
    assert parse_verdict(tie[0]) == "A=B"


def test_local_judge_rejects_unknown_prompts_and_bad_thresholds(rm_path):
    judge = load_judge({"kind": "local", "path": rm_path, "max_length": 256})
    with pytest.raises(ValueError, match="unrecognised judge prompt"):
        judge.judge(_msgs("hello"))
    with pytest.raises(ValueError, match="tie <= strong"):
        LocalJudge(rm_path, tie=2.0, strong=1.0)
    with pytest.raises(ValueError, match="unknown judge kind"):
        load_judge({"kind": "nope"})


@pytest.mark.fault
def test_a_torn_tail_does_not_swallow_the_next_record(server, tmp_path, key):
    """A cache cut mid-line (full disk) is ended before the next append: the new answer
    is read back by a later run, only the torn line is lost."""
    _judge(server, tmp_path).judge(_msgs("a"))
    with open(tmp_path / "cache" / "judge.jsonl", "a") as f:
        f.write('{"key": "trunc')
    _judge(server, tmp_path).judge(_msgs("b"))  # one new call, appended after the torn line
    assert len(server.requests) == 2
    later = _judge(server, tmp_path)
    assert later.judge(_msgs("a", "b")) == ["echo: a", "echo: b"] and later.calls == 0
    lines = (tmp_path / "cache" / "judge.jsonl").read_text().splitlines()
    assert lines[1] == '{"key": "trunc' and len(lines) == 3


@pytest.mark.fault
def test_cache_file_survives_caps_retries_and_parallelism():
    """The cache file name hashes what determines an answer only: raising max_calls (as
    the cap error advises) or changing retries, timeouts, parallelism, the URL or the key
    variable reuses every cached answer; another model or a local judge's thresholds do
    not."""
    from fusekit.chat_eval import judge_fingerprint

    base = {"kind": "openai", "model": "gpt-4-1106-preview", "api_key_env": "K", "max_calls": 10}
    same = {
        **base,
        "max_calls": 20000,
        "max_retries": 9,
        "backoff_s": 5.0,
        "timeout_s": 30,
        "parallel": 16,
        "base_url": "http://127.0.0.1:1/v1",
        "api_key_env": "OTHER",
    }
    assert judge_fingerprint(same) == judge_fingerprint(base)
    assert judge_fingerprint({**base, "model": "gpt-4o"}) != judge_fingerprint(base)
    local = {"kind": "local", "path": "/nonexistent/rm", "tie": 0.1, "strong": 1.0}
    assert judge_fingerprint({**local, "batch_size": 8}) == judge_fingerprint(local)
    assert judge_fingerprint({**local, "tie": 0.2}) != judge_fingerprint(local)


@pytest.mark.fault
def test_raising_the_cap_as_advised_pays_only_for_new_answers(server, tmp_path, key):
    """The cap error's advice followed through alpaca_eval's annotator: a rerun whose judge
    spec differs only in max_calls finds the same cache files and pays only for the
    answers the capped run did not get."""
    import pandas as pd

    from fusekit import alpaca
    from fusekit.chat_eval import _cache

    url = f"http://127.0.0.1:{server.server_port}/v1"
    spec = {"kind": "openai", "model": "judge-model", "api_key_env": ENV, "base_url": url}
    ref = pd.DataFrame(
        {"dataset": "d", "instruction": ["i1", "i2", "i3"], "output": ["r1", "r2", "r3"]}
    ).assign(generator="ref")
    model = ref.assign(output=["o1", "o2", "o3"], generator="model")

    def run(max_calls):
        judged = {**spec, "max_calls": max_calls}
        judge = load_judge(judged, _cache(str(tmp_path / "c"), "judge", "model", judged, "jsonl"))
        ae_cache = _cache(str(tmp_path / "c"), "alpaca", "model", judged, "json")
        return alpaca.annotate(model, ref, judge, tmp_path / "run", ae_cache), judge

    with pytest.raises(JudgeBudgetExceeded, match="larger max_calls"):
        run(2)
    assert len(server.requests) == 2
    ann, judge = run(1000)
    assert judge.calls == 1 and len(server.requests) == 3
    assert len(ann) == 3 and ann.preference.notna().all()
