"""A quiet start: the known warnings silenced one by one, and what a user needs printed.

The known warnings are BentoML's deprecation of the legacy API this service is built on (the
tutorial's contract needs it); each is ignored by its category, the start of its message and the
module it is reported from, so any other warning still shows. BentoML's start line becomes the
URL, the model version and the page.
"""

from __future__ import annotations

import logging
import warnings

# (category, message prefix, module reported from), each a warning seen at every start.
KNOWN_BENTOML_DEPRECATIONS = (
    ("`bentoml.io` is deprecated since BentoML v1.4", "bentoml.io"),
    ("`Runner` is deprecated since BentoML v1.4", "src.service"),
    ("`bentoml.legacy.Service` is deprecated since BentoML v1.4", "src.service"),
)


def quiet_known_warnings() -> None:
    """Ignore exactly the known warnings in this process."""
    import re

    from src.bentoml_adapter import deprecation_warning_class

    # BentoML puts its own filter for its deprecations at the front of the list when the class's
    # module is first imported; import it first so that the filters below come before it.
    BentoMLDeprecationWarning = deprecation_warning_class()
    for message, module in KNOWN_BENTOML_DEPRECATIONS:
        warnings.filterwarnings(
            "ignore", message=re.escape(message), category=BentoMLDeprecationWarning, module=re.escape(module) + r"\Z"
        )


def browsable(host: str) -> str:
    """An address a browser on this machine can open for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def banner(url: str, model_tag: str, bento_tag: str | None = None) -> str:
    served = f"model {model_tag}" + (f" (Bento {bento_tag})" if bento_tag else "")
    return (
        f"Serving {served} at {url} (Press CTRL+C to quit)\n"
        f"  page and Try it out: {url}/\n"
        f"  OpenAPI document:    {url}/docs.json\n"
        f"  predictions:         POST {url}/classify, POST {url}/predict_proba"
    )


class _Announce(logging.Filter):
    """Rewrites BentoML's start line (logger ``bentoml.serving``) into :func:`banner`."""

    def __init__(self, model_tag: str, bento_tag):
        super().__init__()
        self.model_tag, self.bento_tag = model_tag, bento_tag

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            str(record.msg).startswith("Starting production")
            and isinstance(record.args, tuple)
            and len(record.args) == 5
        ):
            _, _, scheme, host, port = record.args
            record.msg = banner(f"{scheme}://{browsable(str(host))}:{port}", self.model_tag, self.bento_tag())
            record.args = ()
        return True


def announce_on_start(model_tag: str, bento_tag=lambda: None) -> None:
    """Make `bentoml serve`'s start line say where the service, its page and its model are.
    ``bento_tag`` is called then (the Bento is known only once BentoML has loaded the service)."""
    logging.getLogger("bentoml.serving").addFilter(_Announce(model_tag, bento_tag))
