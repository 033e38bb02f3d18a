"""Triggers: what starts runs without anybody pressing "run".

- ``tokens``: webhook addresses and secret tokens (shown once, stored as SHA-256, compared in
  constant time).
- ``webhooks``: a webhook's options (answer with the run id, or wait for its output) and how a
  request body becomes run inputs. The route is ``flowloom.api.routes.hooks``.
- ``schedule``: cron expressions in IANA time zones, checked, and their fire times (croniter).
- ``loop``: the schedule loop the server runs; each fire time fires once across processes, and
  fire times missed while the server was down are reported, never replayed.

The rows live in ``workflow_triggers`` (``flowloom.storage.repos.triggers``).
"""

from flowloom.triggers.loop import Firing, ScheduleLoop, TickReport
from flowloom.triggers.schedule import Missed, Schedule, check_timezone
from flowloom.triggers.tokens import (
    new_webhook_path,
    new_webhook_token,
    token_digest,
    token_matches,
)
from flowloom.triggers.webhooks import TOKEN_HEADER, WebhookOptions, inputs_from_body

__all__ = [
    "TOKEN_HEADER",
    "Firing",
    "Missed",
    "Schedule",
    "ScheduleLoop",
    "TickReport",
    "WebhookOptions",
    "check_timezone",
    "inputs_from_body",
    "new_webhook_path",
    "new_webhook_token",
    "token_digest",
    "token_matches",
]
