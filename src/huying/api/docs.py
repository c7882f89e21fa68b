"""The API docs page, `/docs`, with Swagger UI's files served by Huying itself.

FastAPI's own page loads Swagger UI's script and style from a CDN, so on an intranet
without internet it stays blank. Huying runs on such intranets: the page here names
only this server. The files come from the `fastapi-offline` package, which ships
swagger-ui-dist (Swagger UI 5, which reads the OpenAPI 3.1 that FastAPI writes).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-static"
# The package and its folder holding swagger-ui-bundle.js, swagger-ui.css and favicon.png.
ASSETS_PACKAGE = ("fastapi_offline", "static")


def install(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at `docs_url`, its files under `ASSETS_URL`.

    The app must be built with `docs_url=None`: FastAPI's own page would otherwise be
    registered first and answer `docs_url` with its CDN links.
    """
    if app.docs_url is not None:
        raise ValueError("build the FastAPI app with docs_url=None before docs.install(app)")
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs page needs the app's openapi_url")
    redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-static")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that adds a path prefix, every URL of the page carries it.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if redirect_url:
        # Swagger UI's OAuth2 flows come back here; FastAPI serves it beside its own page,
        # so this page does too (the page is inline HTML, with no external URL).
        @app.get(redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
