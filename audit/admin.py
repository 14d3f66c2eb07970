"""The audit trail in the admin: read-only for everyone, superusers included."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "campaign_name", "action", "actor_name", "detail"]
    list_filter = ["workspace", "action", "actor"]
    search_fields = ["campaign_name", "actor_name"]
    readonly_fields = [
        "created_at",
        "workspace",
        "campaign",
        "campaign_name",
        "actor",
        "actor_name",
        "action",
        "detail",
    ]
    date_hierarchy = "created_at"

    # A log that anyone can edit proves nothing, so no one may add, change or
    # delete an event here. The view permission is enough to read the list.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
