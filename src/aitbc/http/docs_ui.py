"""The interactive API documentation at /docs, with Swagger UI served from the package (a
machine without internet access cannot load it from a CDN). ReDoc, which has no such copy,
is not offered."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from aitbc.http.security import SECURITY_HEADERS

ASSETS = Path(__file__).parent / "docs_assets"
ASSETS_URL = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    page = _PAGE.format(
        title=escape(f"{app.title}: API"),
        openapi=escape(app.openapi_url or "/openapi.json"),
        assets=ASSETS_URL,
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)


# Swagger UI started by a script file of our own (docs_assets/init.js), not inline.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon-32x32.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""
