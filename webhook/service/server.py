"""Running the Flask app under gunicorn, programmatically (imported only by ``auditwarden serve``)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from gunicorn.app.base import BaseApplication

from webhook.service.config import ServiceConfig
from webhook.service.worker import ConnectionLimits

__all__ = ["WebhookServer"]


class WebhookServer(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn with the settings of :mod:`webhook.gunicorn_conf` plus ``options``.

    The Flask app is built in each worker after the fork (``preload_app`` is off), so every
    worker has its own certificate reloader, analyzer and caches.  ``limits`` are the
    connection caps and deadlines of every worker (:class:`webhook.service.worker.WebhookWorker`
    reads them from here); the body limit is the configuration's ``maxRequestBytes``.
    """

    def __init__(self, config: ServiceConfig, options: dict[str, Any], limits: ConnectionLimits | None = None) -> None:
        self.service_config = config
        self.options = options
        self.limits = replace(limits or ConnectionLimits(), max_body_bytes=config.max_request_bytes)
        super().__init__(prog="auditwarden serve")

    def load_config(self) -> None:
        import webhook.gunicorn_conf as conf

        for name, value in vars(conf).items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from webhook.service.app import create_app
        from webhook.service.logs import configure
        from webhook.service.tls import reloader_for

        configure(self.service_config.log_level)
        tls = reloader_for(self.cfg.certfile, self.cfg.keyfile) if self.cfg.certfile else None
        app = create_app(self.service_config, tls=tls)
        # Start the analysis fork server now rather than on the first large object.
        service = app.extensions["auditwarden"]
        threading.Thread(target=service.analyzer.warm_up, name="analysis-warm-up", daemon=True).start()
        return app
