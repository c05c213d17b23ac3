"""The ceiling for the web path: a FastAPI endpoint that does nothing, served with the same
server settings as the coordinator."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}
