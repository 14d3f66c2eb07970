"""Admin pages for operators. Statuses are read-only here: they change only
through the model's transition methods, never by hand.

Recipients can be added, changed and deleted only while their campaign is
pending, as on the campaign's own edit page. Dispatch freezes them.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from campaigns.forms import RecipientCleaning
from campaigns.models import Campaign, Recipient


def _is_frozen(campaign: Campaign | None) -> bool:
    """Return whether `campaign` exists and is no longer pending."""
    return campaign is not None and not campaign.is_editable


class RecipientInlineForm(RecipientCleaning):
    class Meta:
        model = Recipient
        fields = ["name", "email", "phone_number"]


class RecipientInline(admin.TabularInline):
    model = Recipient
    form = RecipientInlineForm
    fields = [
        "name",
        "email",
        "phone_number",
        "status",
        "channel",
        "failure_reason",
        "processed_at",
    ]
    readonly_fields = ["status", "channel", "failure_reason", "processed_at"]
    extra = 0
    show_change_link = True

    # For an inline, `obj` is the campaign whose page shows it (None on the add page).
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_delete_permission(request, obj)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "status", "created_at", "started_at", "completed_at"]
    list_filter = ["workspace", "status", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["status", "created_at", "started_at", "completed_at", "activity_log"]
    date_hierarchy = "created_at"
    inlines = [RecipientInline]

    # A campaign stays in the workspace it was created in: its recipients'
    # suppression checks and unsubscribe links belong to that workspace.
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "workspace"] if obj is not None else fields

    # A link rather than an inline: a long-running campaign has many events,
    # and the audit list pages them.
    @admin.display(description="Activity log")
    def activity_log(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "—"
        url = reverse("admin:audit_auditevent_changelist")
        return format_html('<a href="{}?campaign__id__exact={}">Events</a>', url, campaign.pk)

    # Deleting a campaign deletes its recipients, so it is allowed only while
    # it is pending, as Campaign.delete_if_pending and the Delete page allow.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_delete_permission(request, obj)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Campaign | None:
        """Load the campaign, locking its row for a POST (a save or a delete).

        The admin runs a POST in one transaction, so the lock makes a dispatch
        that arrives meanwhile wait, and the inline permissions see the status
        that the save works with. This is what the edit page does too.
        """
        campaign = super().get_object(request, object_id, from_field)
        if campaign is None or request.method != "POST":
            return campaign
        return Campaign.objects.select_for_update().filter(pk=campaign.pk).first()


class RecipientAdminForm(RecipientCleaning):
    class Meta:
        model = Recipient
        fields = ["campaign", "name", "email", "phone_number"]

    def clean(self) -> dict[str, Any]:
        """Reject a recipient whose old or new campaign is no longer pending.

        The campaign rows are locked until the admin's transaction ends, so a
        campaign cannot be dispatched between this check and the save.
        """
        super().clean()
        cleaned_data = self.cleaned_data
        campaign_ids = {
            self.instance.campaign_id,
            getattr(cleaned_data.get("campaign"), "pk", None),
        }
        campaign_ids.discard(None)
        # Lock every campaign involved, pending or not, in id order.
        campaigns = Campaign.objects.select_for_update().filter(pk__in=campaign_ids).order_by("pk")
        frozen = [campaign for campaign in campaigns if not campaign.is_editable]
        if frozen:
            names = ", ".join(
                f"“{campaign.name}” ({campaign.get_status_display().lower()})"
                for campaign in frozen
            )
            raise forms.ValidationError(
                "Recipients can be added, changed or moved only while their campaign is "
                "pending. Not pending: %(campaigns)s.",
                code="campaign_not_pending",
                params={"campaigns": names},
            )
        return cleaned_data


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    form = RecipientAdminForm
    list_display = [
        "__str__",
        "email",
        "phone_number",
        "status",
        "channel",
        "campaign",
        "processed_at",
    ]
    list_filter = ["status", "channel", "campaign__status"]
    search_fields = ["name", "email", "phone_number", "campaign__name"]
    readonly_fields = ["status", "channel", "failure_reason", "processed_at"]
    raw_id_fields = ["campaign"]
    list_select_related = ["campaign"]

    # Here `obj` is the recipient. The add page cannot know the campaign
    # before it is chosen, so RecipientAdminForm checks it on save.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        frozen = obj is not None and _is_frozen(obj.campaign)
        return not frozen and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        frozen = obj is not None and _is_frozen(obj.campaign)
        return not frozen and super().has_delete_permission(request, obj)
