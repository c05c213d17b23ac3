"""The HTTP edge: routing, parameters, paging, errors as responses, idempotent replays,
the request guard and the documentation. Nothing below it imports FastAPI or Starlette."""
