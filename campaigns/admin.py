"""Admin pages for operators. Statuses are read-only here: they change only
through the model's transition methods, never by hand."""

from django.contrib import admin

from campaigns.models import Campaign, Recipient


class RecipientInline(admin.TabularInline):
    model = Recipient
    fields = ["name", "email", "phone_number", "status", "failure_reason", "processed_at"]
    readonly_fields = ["status", "failure_reason", "processed_at"]
    extra = 0
    show_change_link = True


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "created_at", "started_at", "completed_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["status", "created_at", "started_at", "completed_at"]
    date_hierarchy = "created_at"
    inlines = [RecipientInline]


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "phone_number", "status", "campaign", "processed_at"]
    list_filter = ["status", "campaign__status"]
    search_fields = ["name", "email", "phone_number", "campaign__name"]
    readonly_fields = ["status", "failure_reason", "processed_at"]
    raw_id_fields = ["campaign"]
    list_select_related = ["campaign"]
