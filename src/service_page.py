"""The service page: what the model predicts, its version and validation metrics, how to call it.

BentoML 1.4's page (legacy API) is Swagger UI filled with BentoML's boilerplate. This one is
Swagger UI on the service's own document (src/openapi_document.py), whose description
(:func:`description`) says what this model is, from its store metadata (:class:`ModelFacts`).
src/error_middleware.py serves it at ``/``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from src import config
from src.validation import FLOAT32_MAX


@dataclass(frozen=True)
class ModelFacts:
    """What the page and the document say about the served model (from its store metadata)."""

    tag: str
    created: str = ""
    metrics: dict = field(default_factory=dict)
    n_train_rows: int | None = None
    n_validation_rows: int | None = None
    data_sha256: str = ""
    num_boost_round: int | None = None

    @classmethod
    def from_model(cls, model) -> ModelFacts:
        meta = dict(model.info.metadata or {})
        created = model.info.creation_time
        return cls(
            tag=str(model.tag),
            created=created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
            metrics=dict(meta.get("metrics") or {}),
            n_train_rows=meta.get("n_train_rows"),
            n_validation_rows=meta.get("n_validation_rows"),
            data_sha256=str(meta.get("data_sha256") or ""),
            num_boost_round=meta.get("num_boost_round"),
        )


def headline() -> str:
    return f"XGBoost binary classifier: class 0 or 1 for each row of {config.N_FEATURES} features"


def _metrics_sentence(model: ModelFacts) -> str:
    names = {"auc": "AUC {:.4f}", "accuracy": "accuracy {:.4f}", "log_loss": "log loss {:.4f}"}
    found = [names[key].format(model.metrics[key]) for key in names if key in model.metrics]
    if not found:
        return "Its store metadata has no validation metrics."
    rows = f" on {model.n_validation_rows:,} held-out rows" if model.n_validation_rows else ""
    return f"Validation{rows}: {', '.join(found)} (accuracy at the threshold {config.DECISION_THRESHOLD})."


def description(model: ModelFacts, bento_tag: str | None) -> str:
    """Markdown for the page: what the model predicts, which model, how to call it."""
    first, last = config.FEATURE_NAMES[0], config.FEATURE_NAMES[-1]
    classify, predict_proba = config.PREDICTION_ROUTES
    trained = []
    if model.created:
        trained.append(f"trained {model.created}")
    if model.n_train_rows:
        trained.append(f"on {model.n_train_rows:,} rows")
    if model.num_boost_round:
        trained.append(f"{model.num_boost_round} boosting rounds")
    data = f" Training data SHA-256 `{model.data_sha256[:16]}…`." if model.data_sha256 else ""
    bento = f" in Bento `{bento_tag}`" if bento_tag else ""
    example = json.dumps(config.EXAMPLE_ROWS)
    return f"""\
### {headline()}

Predicts a **binary class, 0 or 1**, for each row of **{config.N_FEATURES} numeric features** \
(`{first}` … `{last}`), with an XGBoost model (gradient-boosted trees, `binary:logistic`) trained on \
a synthetic data set ({config.N_ROWS:,} rows, {config.N_INFORMATIVE} of the {config.N_FEATURES} \
features informative).

| endpoint | answers, one per row |
|---|---|
| `POST {classify}` | the class: `1` when the probability of class 1 is at least \
**{config.DECISION_THRESHOLD}**, else `0` |
| `POST {predict_proba}` | the probability of class 1, in [0, 1] |

**Model** `{model.tag}`{bento}{", " + ", ".join(trained) if trained else ""}. {_metrics_sentence(model)}{data}

**Request**: `Content-Type: application/json`; a JSON 2-D array of 1 to {config.MAX_ROWS:,} rows, \
each exactly {config.N_FEATURES} finite numbers within ±{FLOAT32_MAX:.4g}; at most \
{config.MAX_BODY_BYTES:,} bytes. Example: `{example}`.

**Errors** are all one JSON object, `{{"error": "<what was wrong and what was expected>"}}`: \
400 a malformed body, 413 too large, 415 not JSON, 404 an unknown path, 405 a method the path does \
not take, 500 a failure, 504 no answer within {config.REQUEST_TIMEOUT_S:g} s. Every answer names the \
model in its `X-Model-Version` header.

**Call it** (or use *Try it out* below):

```
BASE=http://127.0.0.1:3000   # or the deployed endpoint
curl -X POST "$BASE{classify}" -H 'Content-Type: application/json' -d '{example}'
python -m src.client --url "$BASE" --rows 5                 # random rows
python -m src.client --url "$BASE" --csv data/data.csv --rows 5 --endpoint {predict_proba[1:]}
```
"""


def page(model: ModelFacts) -> bytes:
    """The service page: Swagger UI (BentoML's bundled copy) on this service's document, nothing
    fetched from elsewhere."""
    name = html.escape(f"{headline()} | {config.SERVICE_NAME}, {model.tag}")
    document = f".{config.DOCUMENT_ROUTE}"
    return f"""\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name}</title>
  <link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32">
  <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
  <style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
  <noscript>This page shows the API with JavaScript; the document is <a href="{document}">{document[2:]}</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{document}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    }});
  </script>
</body>
</html>
""".encode()
