"""The web console (控制台) for department staff, dispatchers and supervisors.

Server-rendered Jinja2 pages in zh-CN over the same services as the API
(`huying.requests.service`, `huying.auth.service`); every asset is served from
`static/`, none from a CDN. `routes.router` holds the pages; `routes.STATIC_DIR`
is mounted at `/static`.
"""
