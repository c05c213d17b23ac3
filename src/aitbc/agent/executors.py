"""What runs a job: a shell command that gets the payload as JSON on stdin and prints the
result, or an HTTP endpoint (a local model server) that gets it POSTed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

MAX_ERROR = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    result: Any = None
    error_code: str = ""
    error_message: str = ""


class Executor(Protocol):
    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome: ...

    def stop(self) -> None:
        """Abandon the running job (the agent is stopping and its grace ran out)."""


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ShellExecutor:
    """``sh -c COMMAND`` with the payload on stdin and ``AITBC_JOB_ID`` set; standard output
    is the result (JSON when it parses, else the text), a non-zero exit a failure."""

    def __init__(self, command: str, *, timeout: float | None = None) -> None:
        self._command = command
        self._timeout = timeout
        self._process: subprocess.Popen[str] | None = None

    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
        self._process = subprocess.Popen(
            ["sh", "-c", self._command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"AITBC_JOB_ID": job_id},
            start_new_session=True,
        )
        try:
            out, err = self._process.communicate(json.dumps(payload), timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return Outcome(False, error_code="timeout", error_message="the job ran too long")
        finally:
            code = self._process.wait()
            self._process = None
        if code != 0:
            message = (err.strip() or out.strip() or f"exit status {code}")[-MAX_ERROR:]
            return Outcome(False, error_code=f"exit_{code}", error_message=message)
        return Outcome(True, result=_parsed(out.strip()))

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)


class HttpExecutor:
    """POST the payload to a URL; a 2xx answer is the result, anything else a failure."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self._url = url
        self._timeout = timeout
        self._client: httpx.Client | None = None  # the job's, while it runs

    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
        client = self._client = httpx.Client(timeout=self._timeout)
        try:
            response = client.post(self._url, json=payload, headers={"X-Aitbc-Job-Id": job_id})
        except httpx.HTTPError as exc:
            return Outcome(False, error_code="executor_unreachable", error_message=str(exc))
        finally:
            self._client = None
            client.close()
        if not response.is_success:
            return Outcome(
                False,
                error_code=f"http_{response.status_code}",
                error_message=response.text[-MAX_ERROR:],
            )
        return Outcome(True, result=_parsed(response.text))

    def stop(self) -> None:
        """Abandon the running job's request (the next job gets a client of its own)."""
        client = self._client
        if client is not None:
            client.close()
