"""The assistant's chat from Python (``Cluster.ask``, ``Cluster.ask_stream``, ``Proposal``)
against a real ``bigmgr serve`` (the ``server`` fixture of test_client.py).

No language model can run here, so the model is a **scripted stand-in**: an OpenAI-compatible
chat-completions server in this file (``http.server`` on 127.0.0.1, in a thread) that answers
each request with the next reply of its script, streamed as real ``chat.completion.chunk``
server-sent events (text in pieces, tool calls with their arguments in pieces). What bigmgr
does around it is real: the thread, the tool calls run as the token's user, the proposal and
its confirmation through the API. No agent is needed: the host is added and stays WAITING."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import bigmgr
from conftest import STACKS
from test_client import server  # noqa: F401  (the fixture: a real bigmgr serve)


def _chunk(delta, finish=None):
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def text_reply(*pieces):
    """A streamed text answer, one chunk per piece."""
    return [_chunk({"content": p}) for p in pieces] + [_chunk({}, "stop")]


def call_reply(call_id, name, arguments):
    """One tool call, streamed as OpenAI does: id and name first, the arguments in two pieces."""
    args = json.dumps(arguments)
    half = len(args) // 2
    head = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return [
        _chunk({"role": "assistant", "tool_calls": [head]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[:half]}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}),
        _chunk({}, "tool_calls"),
    ]


class ScriptedModel:
    """The scripted OpenAI-compatible server: `then(reply)` queues a reply (a list of chunks,
    or an int status for a refusal); `requests` are the bodies and Authorization headers it got."""

    def __init__(self, delay=0.0):
        self.replies = []
        self.requests = []
        self.delay = delay
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append((body, self.headers.get("Authorization")))
                reply = model.replies.pop(0) if model.replies else 500
                if isinstance(reply, int):
                    payload = json.dumps({"error": {"message": f"scripted refusal {reply}"}}).encode()
                    self.send_response(reply)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for c in reply:
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(model.delay)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def then(self, reply):
        self.replies.append(reply)
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def model():
    m = ScriptedModel()
    yield m
    m.close()


@pytest.fixture(scope="module")
def chat(server, model):  # noqa: F811
    """A client (admin) with the scripted model as default provider, and cluster `pyask` with
    the demo hello service on a host no agent serves (WAITING; enough for config changes)."""
    url, token = server
    client = bigmgr.connect(url, token)
    set_ = client.set_provider(
        "scripted", model.url, "scripted-model", api_key="sk-py-test-key", default=True, timeout_ms=5000
    )
    assert set_["has_key"] is True and set_["default"] is True
    assert "sk-py-test-key" not in repr(client.providers())
    cluster = client.create_cluster("pyask")
    cluster.add_host("h9", "127.0.0.29")
    cluster.add_service("hello", "demo", "hello", {"hello_server": ["h9"]})
    return client, cluster


def test_ask_returns_the_streamed_text_and_a_proposal_that_confirm_runs(chat, model):
    client, cluster = chat
    hello = cluster.service("hello")
    versions = len(hello.config_versions())
    model.then(
        call_reply(
            "c1",
            "propose_config_change",
            {
                "service": "hello",
                "configs": {"hello.conf": {"greeting": "hi from the assistant"}},
                "message": "asked from python",
            },
        )
    ).then(text_reply("I proposed ", "a new greeting; ", "confirm it to apply."))
    answer = cluster.ask("Change the greeting please")
    assert answer.error is None, answer.error
    assert answer.text == "I proposed a new greeting; confirm it to apply."
    assert str(answer) == answer.text
    assert answer.message is not None
    [call] = answer.tool_calls
    assert call["name"] == "propose_config_change" and call["ok"] is True
    [proposal] = answer.proposals
    assert isinstance(proposal, bigmgr.Proposal)
    assert proposal.state == "pending" and proposal.thread == answer.thread
    assert proposal.action["method"] == "PATCH"
    assert proposal.action["path"] == "/clusters/pyask/services/hello/configs"
    # Nothing changed until the confirmation; then it runs once.
    assert len(hello.config_versions()) == versions
    done = proposal.confirm()
    assert done.state == "confirmed", done.result
    assert done.result["status"] == 201  # a new config version
    assert len(hello.config_versions()) == versions + 1
    assert hello.config_versions()[-1].configs["hello.conf"]["greeting"] == "hi from the assistant"
    with pytest.raises(bigmgr.Conflict):
        proposal.confirm()
    # What the model got: the provider's key as its bearer token, the cluster named.
    body, auth = model.requests[0]
    assert auth == "Bearer sk-py-test-key"
    assert 'cluster "pyask"' in body["messages"][0]["content"]


def test_ask_stream_yields_events_and_goes_on_in_the_thread(chat, model):
    client, cluster = chat
    model.then(call_reply("c2", "propose_restart_stale", {"service": "hello"})).then(
        text_reply("Proposed ", "a restart.")
    )
    stream = cluster.ask_stream("restart what is stale")
    events = list(stream)
    assert [e["event"] for e in events] == [
        "tool_call",
        "proposal",
        "tool_result",
        "token",
        "token",
        "done",
    ], events
    assert "".join(e["data"]["text"] for e in events if e["event"] == "token") == "Proposed a restart."
    pid = next(e["data"]["id"] for e in events if e["event"] == "proposal")
    rejected = client.reject_proposal(pid)
    assert rejected.state == "rejected"
    with pytest.raises(bigmgr.Conflict):
        client.confirm_proposal(pid)
    # The same thread again; a provider that refuses gives `error`, not an exception.
    model.then(401)
    answer = cluster.ask("and now?", thread=stream.thread)
    assert answer.thread == stream.thread
    assert answer.text == ""
    assert "scripted refusal 401" in answer.error, answer.error
    with pytest.raises(bigmgr.NotFound):
        cluster.ask("hello?", provider="nope")


def test_the_chat_needs_a_server(tmp_path):
    emb = bigmgr.Embedded(str(tmp_path / "bigmgr.db"), stacks=[str(STACKS)])
    try:
        cluster = emb.create_cluster("local")
        with pytest.raises(bigmgr.Error, match="needs a bigmgr server"):
            cluster.ask("hello?")
        with pytest.raises(bigmgr.Error, match="needs a bigmgr server"):
            emb.providers()
    finally:
        emb.close()
