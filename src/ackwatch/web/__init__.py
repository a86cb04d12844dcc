"""The board: a live, read-only web page served by the daemon (``web.listen``).

- `server`: `WebBoard`, what the daemon starts (waitress via `daemon.httpserve`);
- `app`: the WSGI application (routes, security headers, bounds on every request);
- `access`: who is asking (loopback, a trusted proxy's header, users with argon2 hashes)
  and which accounts they see;
- `state`: one read of the state through a read-only reader, cached until the daemon
  says it changed; `board`: that read as values for the templates (no I/O);
- `downloads`: the report for a chosen period, through `ackwatch report`'s renderers;
- ``templates/`` (Jinja2, autoescaped) and ``static/`` (the one script and style sheet).
"""
