"""The crew console: a local web page served by ``gateway run`` (see ``docs/console.md``).

:class:`~gateway.console.server.ConsoleServer` serves :class:`~gateway.console.web.Console`
(Starlette) from a thread of the gateway; the gateway passes what the console shows and
changes as a :class:`~gateway.console.unit.ConsoleUnit`.
"""
