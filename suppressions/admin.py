"""The suppression list in the admin, with the same cleaning as its page."""

from django.contrib import admin

from suppressions.forms import SuppressionAdminForm
from suppressions.models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionAdminForm
    list_display = ["__str__", "workspace", "reason", "source_campaign", "created_at"]
    list_filter = ["workspace", "reason", "created_at"]
    search_fields = ["email", "phone"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["source_campaign"]
    date_hierarchy = "created_at"
