"""Log records captured in process, and an endpoint error logged as BentoML's HTTP app logs it,
for the tests of what that logger receives (the adapter's guard and the refusal filter)."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager


@contextmanager
def captured(logger: logging.Logger):
    """The records ``logger`` handles while the block runs."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


class EndpointRequest:
    """What BentoML's ``log_exception`` reads of a request."""

    method = "POST"

    class url:
        path = "/classify"


def log_endpoint_error(http_app, error: BaseException) -> None:
    """Raise ``error`` and log it through ``http_app.log_exception``, as an endpoint does."""
    try:
        raise error
    except BaseException:
        http_app.log_exception(EndpointRequest(), sys.exc_info())
