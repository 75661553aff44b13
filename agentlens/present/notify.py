"""Delivering a report to where people are: the JSON of an alert report POSTed to a webhook (Slack-style
incoming webhooks show its `text` field). The alerts themselves are computed by agentlens.metrics.alerts;
this is the delivery, above it."""

from __future__ import annotations

import urllib.error
import urllib.request

from ..metrics.alerts import AlertReport


class WebhookError(RuntimeError):
    """The webhook could not be delivered (the message says where and why)."""


def post_webhook(url: str, report: AlertReport, timeout: float = 10.0) -> int:
    """POST the report's JSON to `url`; returns the HTTP status. Raises WebhookError."""
    if not url.startswith(("http://", "https://")):
        raise WebhookError(f"--webhook {url!r}: only http:// and https:// URLs")
    body = report.to_json().encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "agentlens-alerts"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        raise WebhookError(f"webhook {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise WebhookError(f"webhook {url}: {reason}") from None
