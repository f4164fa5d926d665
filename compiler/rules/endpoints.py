"""What the config sends out of the machine: no secret in clear, none written into the bundle.

The rules themselves live in ``lfm.runtime.endpoints``, shared with the runtime that sends.
"""

from __future__ import annotations

from lfm.runtime.endpoints import (
    WEBHOOK_ENV,
    has_credentials,
    plain_http_problem,
    url_without_credentials,
)

from ..resolve import Context

QA = ("dataset", "preprocessing", "qa_generation")
WEBHOOK = ("monitoring", "alerting", "webhook_url")
MLFLOW = ("monitoring", "mlflow_tracking_uri")


def generator_endpoint(ctx: Context) -> None:
    """The documents (and the key) go to base_url: encrypted, and with no password in the URL."""
    url = ctx.get(*QA, "base_url")
    if not isinstance(url, str):
        return
    if has_credentials(url):
        ctx.error(
            (*QA, "base_url"),
            "base_url has a user:password@ in it, which would be written to the bundle",
            "take it out; put the key in an environment variable named *_API_KEY and name that "
            "variable in api_key_env",
        )
    key = ctx.get(*QA, "api_key_env")
    what = "your documents" + (f" and the key in ${key}" if key else "")
    if problem := plain_http_problem(url, what):
        ctx.error((*QA, "base_url"), problem)


def webhook_from_environment(ctx: Context) -> None:
    """A webhook URL is a bearer credential: kept out of train.py and the lock file."""
    url = ctx.get(*WEBHOOK)
    if not isinstance(url, str):
        return
    if problem := plain_http_problem(url, "the alerts"):
        ctx.error(WEBHOOK, problem)
    from ..plan_deployment import alert_webhook_secret  # (it imports the rules)

    reason = (
        f"a webhook URL is a credential: not written to the bundle; `lfm train` passes it to the "
        f"run, a run started otherwise reads {WEBHOOK_ENV} (on Kubernetes the Secret "
        f"{alert_webhook_secret(ctx.get('name'))}, key webhook-url)"
    )
    ctx.withhold(WEBHOOK, f"${WEBHOOK_ENV}", "webhook_from_environment", reason)
    ctx.warn(WEBHOOK, reason, f"keep it out of the config too: export {WEBHOOK_ENV} instead")
    ctx.derive(
        "alert_webhook", True, "webhook_from_environment", "monitoring.alerting.webhook_url is set"
    )


def mlflow_credentials(ctx: Context) -> None:
    """user:password@ in the tracking URI: MLflow reads them from its own variables instead."""
    uri = ctx.get(*MLFLOW)
    if not isinstance(uri, str) or not has_credentials(uri):
        return
    if problem := plain_http_problem(uri, "the MLflow password"):
        ctx.error(MLFLOW, problem)
    reason = (
        "the user:password@ in the URI is not written to the bundle; export "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD where train.py runs"
    )
    ctx.decide(MLFLOW, url_without_credentials(uri), "mlflow_credentials", reason)
    ctx.warn(MLFLOW, reason)
