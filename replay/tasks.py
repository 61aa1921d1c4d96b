from celery import shared_task
from django.conf import settings

from replay.log import purge_attempts


@shared_task(name="replay.purge_attempts")
def purge_attempts_task() -> int:
    return purge_attempts(settings.ATTEMPT_RETENTION_DAYS)
