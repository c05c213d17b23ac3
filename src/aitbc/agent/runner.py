"""The agent's loop: register the host's GPUs, heartbeat on an interval with their health,
long-poll for jobs, run each through the executor, post the result or the failure; back off
on errors; on SIGTERM finish the running job (or fail it when the grace runs out), report
the host offline and stop. Beside them it follows the miner's events (the coordinator's
feed): a job cancelled by its client is stopped at once, one whose booking was preempted
(heard there or in a heartbeat's answer) within the notice, one whose booking ran out
(completed: the GPU is free for the next renter) at once, reported failed as
``booking_ended``; bookings of its GPUs beginning and ending are logged."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from aitbc.agent import gpus
from aitbc.agent.executors import Executor, HttpExecutor, Outcome, ShellExecutor

log = logging.getLogger("aitbc.agent")
CANCELLED_KEPT = 100
MAX_BACKOFF_SECONDS = 60.0
# Stopping, a finished job's report is still tried this long (a coordinator restarting).
STOPPING_REPORT_SECONDS = 60.0
# A poll that comes back sooner than this without a job (a draining coordinator answers at
# once; so does a poll that asks not to wait) is followed by a pause of the rest.
MIN_POLL_SECONDS = 1.0
# What the agent listens for in its events (docs/events.md).
HEARD = (
    "job.cancelled,booking.created,booking.started,booking.ending_soon,booking.released,"
    "booking.cancelled,booking.preempted,booking.completed"
)
RAN_OUT = Outcome(
    False,
    error_code="booking_ended",
    error_message="The job's booked time ran out before it finished; it was stopped.",
)


@dataclass
class AgentConfig:
    price_per_hour: str = "1.0"
    region: str | None = None
    configured_gpus: list[dict[str, Any]] = field(default_factory=list)
    heartbeat_seconds: float = 15.0
    poll_wait_seconds: float = 20.0
    stop_grace_seconds: float = 30.0
    read_gpus: Callable[[], list[gpus.Reading] | None] = gpus.read_smi
    # A wait that a stop must not cut short (reporting a finished job while stopping).
    sleep: Callable[[float], None] = time.sleep


class _Backoff:
    """The waits between retries of one loop: 1 s, doubling up to MAX_BACKOFF_SECONDS, from
    1 s again after a success."""

    def __init__(self) -> None:
        self._wait = 1.0

    def next(self) -> float:
        wait, self._wait = self._wait, min(self._wait * 2, MAX_BACKOFF_SECONDS)
        return wait

    def reset(self) -> None:
        self._wait = 1.0


def _detail(response: httpx.Response) -> str:
    """The coordinator's sentence for a refusal (or the body as it came)."""
    try:
        answer = response.json()
    except ValueError:
        return response.text
    return str(answer.get("detail", response.text)) if isinstance(answer, dict) else response.text


class _Interrupted(Exception):
    """A stop signal arrived while the agent only waited for a job."""


class Agent:
    def __init__(self, client: httpx.Client, executor: Executor, config: AgentConfig) -> None:
        self._client = client
        self._executor = executor
        self._config = config
        self.stopping = threading.Event()
        self._working = threading.Event()
        self._heartbeats: threading.Thread | None = None
        self._hearing: threading.Thread | None = None
        self._polling = False
        self._running: str | None = None  # the job being run
        self._cancelled: dict[str, None] = {}  # jobs heard cancelled, oldest first
        self._preempted: str | None = None  # the running job, its booking heard preempted
        self._ran_out: str | None = None  # the running job, its booking heard completed
        self.jobs_done = 0

    def on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM or SIGINT: stop taking jobs; a long poll in progress is abandoned at once,
        a running job gets the stop grace."""
        log.info("signal %d: stopping", signum)
        self.stopping.set()
        if self._polling:
            raise _Interrupted

    # -- talking to the coordinator -----------------------------------------------------

    def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        response = self._client.request(method, path, json=body, params=params)
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            response.raise_for_status()
        return response

    def _readings(self) -> list[gpus.Reading] | None:
        try:
            return self._config.read_gpus()
        except Exception:  # a broken nvidia-smi must not stop the host
            log.exception("reading the GPUs failed")
            return None

    def register(self) -> dict[str, Any]:
        readings = self._readings()
        specs = (
            gpus.register_specs(readings, price_per_hour=self._config.price_per_hour)
            if readings
            else self._config.configured_gpus
        )
        if not specs:
            raise RuntimeError("no GPU found: nvidia-smi is missing and none was configured")
        body = {"gpus": specs, "region": self._config.region}
        response = self._call("POST", "/v1/miners/register", body)
        response.raise_for_status()
        registered: dict[str, Any] = response.json()
        log.info("registered %d GPU(s)", len(registered.get("gpus", [])))
        return registered

    def heartbeat(self, status: str = "online") -> None:
        readings = self._readings()
        body = {
            "status": status,
            "inflight": 1 if self._working.is_set() else 0,
            "gpus": gpus.health_reports(readings) if readings else [],
        }
        response = self._call("POST", "/v1/miners/heartbeat", body)
        if response.status_code == 404 and readings:
            # A GPU the coordinator does not know (nvidia-smi sees one it did not when the
            # agent registered): register what it sees now, then beat again.
            said = _detail(response)
            log.warning("the coordinator does not know a GPU here (%s): registering again", said)
            self.register()
            response = self._call("POST", "/v1/miners/heartbeat", body)
        response.raise_for_status()
        try:  # the bookings in a preemption notice: how the agent hears one it missed
            answer = response.json()
        except ValueError:
            answer = None
        notices = answer.get("preemptions") if isinstance(answer, dict) else None
        for notice in notices if isinstance(notices, list) else []:
            if isinstance(notice, dict):
                self._preempt(notice.get("job_id"))

    def poll(self, wait: float) -> dict[str, Any] | None:
        self._polling = True
        try:
            if self.stopping.is_set():
                return None
            response = self._call(
                "POST", "/v1/miners/poll", {"max_wait_seconds": wait, "claim": True}
            )
        finally:
            self._polling = False
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return None
        job: dict[str, Any] = response.json()
        # The job is ours once the coordinator hears we have it; a claim that ran out
        # meanwhile went back to be polled for again.
        confirmed = self._call("POST", f"/v1/miners/jobs/{job['job_id']}/start")
        if confirmed.status_code in (404, 409):
            said = _detail(confirmed)
            if "cancelled" in said:  # its client cancelled it between the poll and now
                log.info("job %s was cancelled by its client before it began", job["job_id"])
            else:
                log.warning("job %s went back before it was confirmed: %s", job["job_id"], said)
            return None
        confirmed.raise_for_status()
        return job

    def _report(self, job_id: str, outcome: Outcome) -> None:
        """Tell the coordinator how the job ended. Tried again while the coordinator cannot
        answer (no connection, 429, 5xx); done when it says the job is no longer this
        miner's to report on (404, 409). A result it refuses is reported as a failure
        (``result_refused``), so that the job ends. Stopping, it is still tried for
        STOPPING_REPORT_SECONDS."""
        backoff, waited = _Backoff(), 0.0
        while True:
            if outcome.ok:
                path, body = f"/v1/miners/{job_id}/result", {"result": outcome.result}
            else:
                path = f"/v1/miners/{job_id}/fail"
                body = {"error_code": outcome.error_code, "error_message": outcome.error_message}
            try:
                response = self._call("POST", path, body)
            except httpx.HTTPError as exc:
                trouble = str(exc)
            else:
                if response.status_code < 400:
                    return
                said = _detail(response)
                if response.status_code in (404, 409):  # ended meanwhile, or back in the queue
                    log.warning("job %s was no longer this miner's to report on: %s", job_id, said)
                    return
                if not outcome.ok:
                    log.error("the coordinator refused job %s's failure: %s", job_id, said)
                    return
                log.error("the coordinator refused job %s's result (%s): failing it", job_id, said)
                outcome = Outcome(False, error_code="result_refused", error_message=said[:2000])
                continue
            wait = backoff.next()
            log.warning("reporting job %s failed (%s); retrying in %.0f s", job_id, trouble, wait)
            if not self.stopping.is_set():
                self.stopping.wait(wait)
                continue
            if waited >= STOPPING_REPORT_SECONDS:
                log.error("job %s's report was given up: the agent is stopping", job_id)
                return
            self._config.sleep(wait)  # the stop no longer waits
            waited += wait

    # -- the loop -------------------------------------------------------------------------

    def work(self, job: dict[str, Any]) -> None:
        job_id = job["job_id"]
        self._running = job_id
        if job_id in self._cancelled:  # heard of before it began: nothing to stop
            self._running = None
            self._cancelled.pop(job_id, None)
            log.info("job %s was cancelled by its client before it began", job_id)
            return
        log.info("job %s started", job_id)
        began = time.monotonic()
        self._working.set()
        watchdog = threading.Thread(target=self._abandon_after_grace, daemon=True)
        watchdog.start()
        try:
            outcome = self._executor.run(job_id, job.get("payload") or {})
        except Exception as exc:  # the executor itself broke: the job failed
            log.exception("job %s: the executor failed", job_id)
            outcome = Outcome(False, error_code="executor_error", error_message=str(exc))
        finally:
            self._working.clear()
            self._running = None
        if job_id in self._cancelled:
            self._cancelled.pop(job_id, None)
            log.info("job %s was cancelled by its client and stopped", job_id)
            self.jobs_done += 1
            return
        if self._preempted == job_id:  # the coordinator put it back in the queue
            self._preempted = None
            log.info("job %s was preempted and stopped (not a failure)", job_id)
            self.jobs_done += 1
            return
        ran_out, self._ran_out = self._ran_out == job_id, None
        if ran_out and not outcome.ok:  # stopped: its booked time is over, the GPU another's
            outcome = RAN_OUT  # (one that finished as it was heard reports its result)
        elif not outcome.ok and self.stopping.is_set() and outcome.error_code.startswith("exit_"):
            outcome = Outcome(
                False, error_code="agent_stopped", error_message="the miner agent was stopped"
            )
        took = time.monotonic() - began
        if outcome.ok:
            size = len(json.dumps(outcome.result))
            log.info("job %s finished in %.1f s: a result of %d bytes", job_id, took, size)
        else:
            log.info("job %s failed in %.1f s: %s", job_id, took, outcome.error_code)
        self._report(job_id, outcome)
        self.jobs_done += 1

    def _abandon_after_grace(self) -> None:
        """While a job runs: once stopping, give it the grace, then stop it."""
        while self._working.is_set():
            if self.stopping.wait(0.2):
                if not self._working.wait(0):
                    return
                finished = _wait_cleared(self._working, self._config.stop_grace_seconds)
                if not finished:
                    log.warning("the running job outlived the stop grace; stopping it")
                    self._executor.stop()
                return

    # -- hearing what concerns this miner ---------------------------------------------------

    def _events(self, params: dict[str, Any]) -> dict[str, Any]:
        response = self._call("GET", "/v1/events", None, params={"types": HEARD, **params})
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return page

    def _newest_event(self) -> int | None:
        """Where following the events starts: the newest now (what happened before is
        past), taken before the first poll for a job, so that no job this agent takes can be
        cancelled before it. None when the coordinator did not answer (the thread asks)."""
        try:
            return int(self._events({"latest": "true", "limit": 1})["next_after"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("reading the newest event failed (%s)", exc)
            return None

    def _hear(self, cursor: int | None) -> None:
        """Follow the miner's events after ``cursor`` (a long poll), until stopping."""
        backoff = _Backoff()
        while not self.stopping.is_set():
            try:
                if cursor is None:  # start at the newest: what happened before is past
                    cursor = int(self._events({"latest": "true", "limit": 1})["next_after"])
                    continue
                page = self._events({"after": cursor, "wait": self._config.poll_wait_seconds})
                events, after = page["events"], int(page["next_after"])
                if not isinstance(events, list):
                    raise TypeError(f"events of another shape: {events!r:.80}")
                backoff.reset()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                wait = backoff.next()
                log.warning("following events failed (%s); retrying in %.0f s", exc, wait)
                self.stopping.wait(wait)
                continue
            for event in events:
                try:
                    self.heard(event)
                except Exception:  # one odd event must not end the hearing
                    log.exception("an event could not be read: %r", event)
            cursor = after

    def heard(self, event: dict[str, Any]) -> None:
        """Act on one event of this miner's."""
        kind, data = event["type"], event.get("data") or {}
        if kind == "job.cancelled":
            # Kept until its job comes to run (it may be on its way to this agent now).
            self._cancelled[event["object_id"]] = None
            while len(self._cancelled) > CANCELLED_KEPT:
                self._cancelled.pop(next(iter(self._cancelled)), None)
            if event["object_id"] == self._running:
                log.info("job %s was cancelled by its client: stopping it", self._running)
                stopping = threading.Thread(
                    target=self._stop_job, args=(event["object_id"],), daemon=True
                )
                stopping.start()
            return
        booking, gpu = data.get("booking_id"), data.get("gpu_id")
        if kind == "booking.preempted":
            taken = (data.get("preemption") or {}).get("gpu_taken_at")
            log.info("booking %s of GPU %s was outbid; the GPU is taken at %s", booking, gpu, taken)
            self._preempt(data.get("job_id"))
            return
        running = self._running
        if kind == "booking.completed" and running is not None and data.get("job_id") == running:
            log.info("job %s: its booking %s ran out; stopping it", running, booking)
            self._ran_out = running
            threading.Thread(target=self._stop_job, args=(running,), daemon=True).start()
            return
        if kind == "booking.ending_soon":
            minutes = int(data.get("ends_in_seconds") or 0) // 60
            log.info("booking %s of GPU %s ends in %d min", booking, gpu, minutes)
        elif kind == "booking.created" and data.get("status") != "active":
            log.info("GPU %s reserved from %s (booking %s)", gpu, data.get("start_time"), booking)
        elif kind in ("booking.created", "booking.started"):
            log.info("booking %s of GPU %s began (until %s)", booking, gpu, data.get("end_time"))
        else:
            log.info("booking %s of GPU %s ended (%s)", booking, gpu, data.get("status"))

    def _preempt(self, job_id: str | None) -> None:
        """The booking of ``job_id`` was preempted: stop the job if it is the one running
        (once, however often it is heard)."""
        if job_id is None or job_id != self._running or self._preempted == job_id:
            return
        self._preempted = job_id
        log.info("job %s: its booking was preempted; stopping it", job_id)
        threading.Thread(target=self._stop_job, args=(job_id,), daemon=True).start()

    def _stop_job(self, job_id: str) -> None:
        """Stop the job until it has stopped: it may be starting still (its process not
        yet made), when one stop finds nothing to stop."""
        while self._running == job_id:
            self._executor.stop()
            time.sleep(0.1)

    def _beat(self) -> None:
        while not self.stopping.wait(self._config.heartbeat_seconds):
            try:
                self.heartbeat()
            except httpx.HTTPError as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:  # whatever it was, the next heartbeat is due all the same
                log.exception("heartbeat failed")

    def run(self, *, once: bool = False) -> int:
        """Serve until stopped (or one cycle with ``once``); returns the jobs run."""
        if once:
            self.register()
        else:
            self._until_done(self.register)
        if not once:
            self._heartbeats = threading.Thread(target=self._beat, daemon=True)
            self._heartbeats.start()
            start = self._newest_event()
            self._hearing = threading.Thread(target=self._hear, args=(start,), daemon=True)
            self._hearing.start()
        backoff = _Backoff()
        while not self.stopping.is_set():
            asked = time.monotonic()
            try:
                job = self.poll(0 if once else self._config.poll_wait_seconds)
                backoff.reset()
            except _Interrupted:
                break
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:  # or no job in it
                wait = backoff.next()
                log.warning("polling failed (%s); retrying in %.0f s", exc, wait)
                self.stopping.wait(wait)
                if once:
                    break
                continue
            if job is not None:
                self.work(job)
            elif not once:
                self.stopping.wait(max(0.0, MIN_POLL_SECONDS - (time.monotonic() - asked)))
            if once:
                break
        self.stopping.set()
        if self._heartbeats is not None:
            self._heartbeats.join(timeout=5)
        try:
            self.heartbeat("offline" if not once else "online")
        except httpx.HTTPError as exc:
            log.warning("the last heartbeat failed: %s", exc)
        return self.jobs_done

    def _until_done(self, step: Callable[[], object]) -> None:
        backoff = _Backoff()
        while True:
            try:
                step()
                return
            except httpx.HTTPError as exc:
                wait = backoff.next()
                log.warning("%s failed (%s); retrying in %.0f s", step.__name__, exc, wait)
                if self.stopping.wait(wait):
                    raise


def _wait_cleared(event: threading.Event, timeout: float) -> bool:
    """Wait until ``event`` is cleared; False when ``timeout`` passed first."""
    waited = 0.0
    while event.is_set():
        if waited >= timeout:
            return False
        threading.Event().wait(0.1)
        waited += 0.1
    return True


def serve(
    *,
    coordinator_url: str,
    api_key: str,
    command: str | None,
    endpoint: str | None,
    configured_gpus: list[dict[str, Any]],
    price_per_hour: str,
    region: str | None,
    heartbeat_seconds: float,
    poll_wait_seconds: float,
    stop_grace_seconds: float,
    job_timeout: float | None,
    once: bool,
) -> int:
    """Run the agent in this process until SIGTERM or SIGINT (or one cycle); the jobs run."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One line per job, not one per request: the heartbeats and polls say nothing unless
    # they fail (the agent logs that itself).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    executor: Executor
    if command is not None:
        executor = ShellExecutor(command, timeout=job_timeout)
    else:
        executor = HttpExecutor(str(endpoint), timeout=job_timeout)
    agent_config = AgentConfig(
        price_per_hour=price_per_hour,
        region=region,
        configured_gpus=configured_gpus,
        heartbeat_seconds=heartbeat_seconds,
        poll_wait_seconds=poll_wait_seconds,
        stop_grace_seconds=stop_grace_seconds,
    )
    client = httpx.Client(
        base_url=coordinator_url,
        headers={"X-Api-Key": api_key},
        timeout=poll_wait_seconds + 10,
    )
    with client:
        agent = Agent(client, executor, agent_config)
        previous = {
            sig: signal.signal(sig, agent.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            return agent.run(once=once)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
