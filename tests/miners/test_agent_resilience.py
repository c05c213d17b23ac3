"""The miner agent against a coordinator that answers oddly or not at all: a report is
retried while the coordinator cannot answer and ends when it refuses; a poll, a heartbeat or
an event it cannot read is a failed one, never the end of the agent or of its threads; and a
poll answered at once is not asked again at once. The coordinator is an httpx MockTransport."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aitbc.agent.executors import Outcome
from aitbc.agent.gpus import Reading
from aitbc.agent.runner import MAX_BACKOFF_SECONDS, STOPPING_REPORT_SECONDS, Agent, AgentConfig

Answer = Callable[[httpx.Request], httpx.Response]


class _Done:
    """An executor whose job ends at once with the given outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
        return self.outcome

    def stop(self) -> None:
        pass


def _agent(answer: Answer, outcome: Outcome | None = None, **config: Any) -> Agent:
    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))
    done = _Done(outcome or Outcome(True, result={"answer": 42}))
    return Agent(client, done, AgentConfig(read_gpus=lambda: None, **config))


def _posted(seen: list[tuple[str, Any]], suffix: str) -> list[Any]:
    return [body for path, body in seen if path.endswith(suffix)]


def _recording(seen: list[tuple[str, Any]], reply: Answer) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content or b"null")))
        return reply(request)

    return answer


def test_a_result_the_coordinator_refuses_is_reported_as_a_failure() -> None:
    seen: list[tuple[str, Any]] = []
    refusal = {"error": "validation_error", "detail": "result: not what it takes"}

    def reply(request: httpx.Request) -> httpx.Response:
        refused = request.url.path.endswith("/result")
        return httpx.Response(422, json=refusal) if refused else httpx.Response(200, json={})

    agent = _agent(_recording(seen, reply))
    agent.work({"job_id": "job_1", "payload": {}})
    assert [path for path, _ in seen] == ["/v1/miners/job_1/result", "/v1/miners/job_1/fail"]
    [failure] = _posted(seen, "/fail")
    assert failure["error_code"] == "result_refused"
    assert "not what it takes" in failure["error_message"]
    assert agent.jobs_done == 1


@pytest.mark.parametrize("status", [404, 409])
def test_a_report_on_a_job_no_longer_the_miners_ends_there(status: int) -> None:
    """Requeued (its booking interrupted while the miner was cut off), or ended meanwhile:
    there is nothing left to report, and the agent goes on to the next job."""
    seen: list[tuple[str, Any]] = []
    agent = _agent(_recording(seen, lambda request: httpx.Response(status, json={})))
    agent.work({"job_id": "job_1", "payload": {}})
    assert [path for path, _ in seen] == ["/v1/miners/job_1/result"]


def test_stopping_a_report_is_tried_through_a_short_outage_then_given_up() -> None:
    """A job finished as the agent stops: its result outlasts a coordinator restarting (the
    stop no longer waits, so the agent sleeps), for STOPPING_REPORT_SECONDS at most."""
    slept: list[float] = []
    answers = iter([503, 503, 503, 200])
    seen: list[tuple[str, Any]] = []
    agent = _agent(
        _recording(seen, lambda request: httpx.Response(next(answers), json={})),
        sleep=slept.append,
    )
    agent.stopping.set()
    agent.work({"job_id": "job_1", "payload": {}})
    assert len(_posted(seen, "/result")) == 4 and slept == [1.0, 2.0, 4.0]

    slept.clear()
    down = _agent(lambda request: httpx.Response(503, json={}), sleep=slept.append)
    down.stopping.set()
    down.work({"job_id": "job_2", "payload": {}})
    assert STOPPING_REPORT_SECONDS <= sum(slept) <= STOPPING_REPORT_SECONDS + MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(
    "poll_answer",
    [
        httpx.Response(200, text="<html>down for maintenance</html>"),
        httpx.Response(200, json=["not", "a", "job"]),
        httpx.Response(200, json={"no": "job id"}),
    ],
)
def test_a_poll_answer_without_a_job_in_it_is_a_failed_poll(poll_answer: httpx.Response) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/miners/poll":
            return poll_answer
        return httpx.Response(200, json={"gpus": []})

    agent = _agent(reply, configured_gpus=[{"model": "RTX 4090", "memory_gb": 24}])
    assert agent.run(once=True) == 0  # it did not raise


@pytest.mark.parametrize(
    "heartbeat_answer",
    [["ok"], None, "ok", {"preemptions": "none"}, {"preemptions": [1, None, "x"]}],
)
def test_a_heartbeat_answer_of_another_shape_is_ignored(heartbeat_answer: Any) -> None:
    agent = _agent(lambda request: httpx.Response(200, json=heartbeat_answer))
    agent.heartbeat()  # it did not raise


def test_the_heartbeats_go_on_after_one_fails_in_any_way() -> None:
    beats: list[int] = []

    def reply(request: httpx.Request) -> httpx.Response:
        beats.append(1)
        if len(beats) == 1:
            raise RuntimeError("a fault of no known kind")
        if len(beats) >= 3:
            agent.stopping.set()
        return httpx.Response(200, json={})

    agent = _agent(reply, heartbeat_seconds=0.01)
    beating = threading.Thread(target=agent._beat, daemon=True)
    beating.start()
    beating.join(5)
    assert not beating.is_alive() and len(beats) >= 3


def test_an_event_it_cannot_read_does_not_end_the_hearing() -> None:
    pages = iter(
        [
            {"events": [{"type": "job.cancelled"}], "next_after": 5},  # no object_id
            {"events": "garbled", "next_after": 6},
            {"events": [{"type": "job.cancelled", "object_id": "job_2"}], "next_after": 7},
        ]
    )

    def reply(request: httpx.Request) -> httpx.Response:
        page = next(pages, None)
        if page is None:
            agent.stopping.set()
            return httpx.Response(200, json={"events": [], "next_after": 7})
        return httpx.Response(200, json=page)

    agent = _agent(reply)
    hearing = threading.Thread(target=agent._hear, args=(0,), daemon=True)
    hearing.start()
    hearing.join(10)
    assert not hearing.is_alive()
    assert "job_2" in agent._cancelled  # heard after the odd ones


def test_polls_answered_at_once_are_not_asked_again_at_once() -> None:
    """A draining coordinator answers a poll with 204 at once; so does a poll that asks not
    to wait. The agent pauses before the next instead of asking thousands of times."""
    polls: list[int] = []

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/miners/poll":
            polls.append(1)
            return httpx.Response(204)
        return httpx.Response(200, json={"gpus": [], "events": [], "next_after": 0})

    agent = _agent(reply, configured_gpus=[{"model": "X", "memory_gb": 1}], poll_wait_seconds=0)
    running = threading.Thread(target=agent.run, daemon=True)
    running.start()
    threading.Event().wait(1.5)
    agent.stopping.set()
    running.join(10)
    assert not running.is_alive()
    assert 1 <= len(polls) <= 3


def test_a_gpu_the_coordinator_does_not_know_is_registered_on_the_next_heartbeat() -> None:
    """nvidia-smi failed when the agent registered (it registered its configured GPU), and
    sees two GPUs now: the coordinator refuses health for the unknown one (404), so the
    agent registers what it sees and beats again, rather than fall silent for good."""
    two = [
        Reading("0", "RTX 4090", 24564, 10.0, 100, 50.0),
        Reading("1", "RTX 4090", 24564, 0, 0, 40),
    ]
    calls: list[str] = []
    known = {"0"}

    def reply(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        body = json.loads(request.content)
        if request.url.path == "/v1/miners/register":
            known.update(str(gpu.get("slot", index)) for index, gpu in enumerate(body["gpus"]))
            return httpx.Response(201, json={"gpus": body["gpus"]})
        if any(report["slot"] not in known for report in body["gpus"]):
            return httpx.Response(404, json={"error": "gpu_not_found", "detail": "no slot 1"})
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(reply))
    agent = Agent(client, _Done(Outcome(True)), AgentConfig(read_gpus=lambda: two))
    agent.heartbeat()
    assert calls == ["/v1/miners/heartbeat", "/v1/miners/register", "/v1/miners/heartbeat"]
    assert known == {"0", "1"}
