"""The anchor of bench/webhooks.py: what a Celery user would write, one task per event POSTing
to the receiver, run on Celery's threads pool (`-P threads -c 64`). Nothing of the control plane
is imported: no event log, no claims, no outcomes; only the call."""

from __future__ import annotations

import json
import os

import urllib3
from celery import Celery

app = Celery("anchor", broker=os.environ.get("ANCHOR_BROKER", "redis://127.0.0.1:6379/6"))
app.conf.update(
    task_acks_late=True,  # the same at-least-once setting as ours
    worker_prefetch_multiplier=4,
    task_ignore_result=True,
    task_default_queue="anchor",
    worker_hijack_root_logger=False,
)
_http = urllib3.PoolManager(maxsize=64, retries=False)


@app.task(name="anchor.post")
def post(url: str, event_id: str) -> int:
    body = json.dumps({"id": event_id}).encode()
    response = _http.request(
        "POST",
        url,
        body=body,
        headers={"Content-Type": "application/json", "X-Event-Id": event_id},
        timeout=urllib3.Timeout(total=5),
    )
    return response.status
