"""/docs (Swagger UI) and /redoc from assets installed with the app, not from a CDN: a bank's
network has no internet, and FastAPI's own pages are blank there.

The assets come from the ``fastapi-offline`` package (swagger-ui-dist and ReDoc's standalone
bundle), pinned in ``pyproject.toml`` and served under ``/docs-assets``.
"""

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
_ASSET_FILES = str(files("fastapi_offline") / "static")

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def add_offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with local assets; the app must be built with ``docs_url=None`` and
    ``redoc_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=_ASSET_FILES), name="docs-assets")
    app.include_router(router)
