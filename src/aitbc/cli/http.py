"""The CLI's HTTP client: one request, no retries, a 5-second timeout (longer for a long
poll), the server's error message on failure."""

from __future__ import annotations

import re
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

import click
import httpx

from aitbc.cli.config import CliConfig

TIMEOUT_SECONDS = 5.0


def segment(value: object) -> str:
    """A value as one segment of a request's path: an id holding ``/`` or ``..`` names no
    other route."""
    return quote(str(value), safe="")


class Options(TypedDict, total=False):
    json: Any
    params: dict[str, Any] | None
    headers: dict[str, str] | None
    expect: tuple[int, ...]
    timeout: float


class ApiError(click.ClickException):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.detail = detail


class Api:
    def __init__(self, config: CliConfig, transport: httpx.BaseTransport | None = None) -> None:
        if not config.api_key.isascii():
            raise click.ClickException(
                "The API key holds characters that are not ASCII: no key does (check "
                "--api-key, AITBC_API_KEY or the config file)."
            )
        self._url = config.coordinator_url
        try:
            self._client = httpx.Client(
                base_url=config.coordinator_url,
                timeout=TIMEOUT_SECONDS,
                headers={"X-Api-Key": config.api_key},
                transport=transport,
            )
        except httpx.InvalidURL as exc:
            raise click.ClickException(
                f"The coordinator's URL {config.coordinator_url!r} is not a URL ({exc}): "
                "check --url, AITBC_URL or the config file."
            ) from exc

    def request(self, method: str, path: str, **options: Unpack[Options]) -> Any:
        return self.exchange(method, path, **options)[0]

    def exchange(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
        timeout: float = TIMEOUT_SECONDS,
    ) -> tuple[Any, httpx.Headers]:
        """The decoded body and the response headers (for paging)."""
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(
                method, path, json=json, params=clean_params, headers=headers, timeout=timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise click.ClickException(f"cannot reach the coordinator: {exc}") from exc
        if response.status_code not in expect:
            try:
                body = response.json()
                code, detail = str(body["error"]), str(body["detail"])
            except (ValueError, KeyError, TypeError):
                code, detail = "http_error", response.text[:200] or response.reason_phrase
            raise ApiError(response.status_code, code, in_cli_words(detail))
        if response.status_code == 204 or not response.content:
            return None, response.headers
        try:
            return response.json(), response.headers
        except ValueError as exc:
            raise click.ClickException(
                f"{self._url} answered HTTP {response.status_code} with something other than "
                "JSON: is it the coordinator's URL?"
            ) from exc


_QUERY_FIELD = re.compile(r"\bquery\.([a-z_]+)")
_FRACTION = re.compile(r"(T\d{2}:\d{2}:\d{2})\.\d+")


def in_cli_words(detail: str) -> str:
    """The server's message as the CLI's user asked: a query parameter as its option
    (``query.memory_min`` -> ``--memory-min``), ``create=true`` as ``--create``, times to
    the second."""
    detail = _QUERY_FIELD.sub(lambda m: "--" + m.group(1).replace("_", "-"), detail)
    detail = detail.replace("pass create=true", "add --create")
    return _FRACTION.sub(r"\1", detail)
