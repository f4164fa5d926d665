"""lfm's web UI (`lfm ui`): the registry, training runs, evaluations, datasets and a server.

Pages are rendered on the server (Jinja2, autoescaped) and work without a build step; the only
scripts are static files (the live run charts, with the vendored uPlot, and confirm dialogs).
Access follows `lfm serve`: the same API keys and roles, read-only without an operate key.
"""
