"""A quiet start: the known warnings silenced one by one, and what a user needs printed.

The known warnings are BentoML's deprecation of the legacy API this service is built on (the
tutorial's contract needs it); each is ignored by its category, the start of its message and the
module it is reported from, so any other warning still shows. BentoML's start line becomes the
URL, the model version and the page.
"""

from __future__ import annotations

import warnings

from src import config

# (message prefix, module reported from) of each BentoMLDeprecationWarning seen at every start.
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
    predictions = ", ".join(f"POST {url}{route}" for route in config.PREDICTION_ROUTES)
    return (
        f"Serving {served} at {url} (Press CTRL+C to quit)\n"
        f"  page and Try it out: {url}{config.PAGE_ROUTE}\n"
        f"  OpenAPI document:    {url}{config.DOCUMENT_ROUTE}\n"
        f"  predictions:         {predictions}"
    )


def announcement(model_tag: str, bento_tag=lambda: None):
    """The start line's rewrite: (scheme, host, port) to :func:`banner`, ``bento_tag`` called then."""

    def rewrite(scheme: str, host: str, port: int) -> str:
        return banner(f"{scheme}://{browsable(host)}:{port}", model_tag, bento_tag())

    return rewrite


def announce_on_start(model_tag: str, bento_tag=lambda: None) -> None:
    """Make `bentoml serve`'s start line say where the service, its page and its model are.
    ``bento_tag`` is called then (the Bento is known only once BentoML has loaded the service)."""
    from src.bentoml_adapter import rewrite_start_line

    rewrite_start_line(announcement(model_tag, bento_tag))
