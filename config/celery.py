"""The Celery application shared by the web process (which enqueues) and workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_dispatcher")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
