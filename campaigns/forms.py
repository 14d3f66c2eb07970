"""The campaign form and its nested recipient rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.forms import BaseInlineFormSet, inlineformset_factory

from campaigns.models import EMAIL_SUBJECT_MAX_LENGTH, Campaign, Recipient
from campaigns.normalization import (
    InvalidContact,
    clean_address,
    clean_email,
    clean_name,
    clean_phone,
)


class CampaignForm(forms.ModelForm):
    """The campaign's name and message content.

    The content fields' model validators compile each template in the
    sandbox of campaigns/content.py, so a syntax error or an unknown
    variable shows next to its field, with its line, and nothing is saved.
    """

    class Meta:
        model = Campaign
        fields = ["name", "email_subject", "email_text", "email_html", "sms_text", "prefer_sms"]
        labels = {"email_html": "Email HTML (optional)"}
        widgets = {
            "name": forms.TextInput(attrs={"autofocus": True, "maxlength": 200}),
            "email_subject": forms.TextInput(attrs={"maxlength": EMAIL_SUBJECT_MAX_LENGTH}),
            "email_text": forms.Textarea(attrs={"rows": 6, "spellcheck": "true"}),
            "email_html": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
            "sms_text": forms.Textarea(attrs={"rows": 3, "spellcheck": "true"}),
        }
        error_messages = {"name": {"required": "Enter a campaign name."}}


class RecipientCleaning(forms.ModelForm):
    """The cleaning of a recipient's name, email and phone number that every form shares.

    It is the CSV import's cleaning too (campaigns/normalization.py), so a
    value that one accepts the other accepts, in the same stored form.
    """

    def clean_name(self) -> str:
        return _cleaned(clean_name, self.cleaned_data.get("name", ""))

    def clean_email(self) -> str:
        return _cleaned(clean_email, self.cleaned_data.get("email", ""))

    def clean_phone_number(self) -> str:
        return _cleaned(clean_phone, self.cleaned_data.get("phone_number", ""))


class RecipientForm(RecipientCleaning):
    class Meta:
        model = Recipient
        fields = ["name", "email", "phone_number"]
        labels = {"phone_number": "Phone"}
        widgets = {
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "phone_number": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
        }

    def validate_constraints(self) -> None:
        # The checks above and the formset's duplicate check already cover the
        # model's constraints, with messages next to the field. Django's own
        # check would query once per row and per constraint, and would judge
        # each row against the stored rows before the formset's deletes and
        # changes apply. The database still enforces every constraint on save.
        return

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        has_errors = "email" in self.errors or "phone_number" in self.errors
        if not has_errors and not cleaned.get("email") and not cleaned.get("phone_number"):
            raise ValidationError("Enter an email address or a phone number.")
        return cleaned


def _cleaned(clean: Callable[[str], str], value: str) -> str:
    try:
        return clean(value)
    except InvalidContact as exc:
        raise ValidationError(str(exc)) from None


class BaseRecipientFormSet(BaseInlineFormSet):
    """Recipient rows; rejects the same email or phone number twice in one campaign."""

    default_error_messages = {
        "too_few_forms": "Add at least one recipient with an email address or a phone number.",
        "too_many_forms": "A campaign can have at most %(num)d recipients in this form.",
    }

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        # A new row left completely blank is skipped rather than rejected,
        # wherever it sits; a campaign with no filled row fails validate_min.
        # Saved rows are always cleaned, so the duplicate check includes them too.
        kwargs = super().get_form_kwargs(index)
        if index is None or index >= self.initial_form_count():
            kwargs["empty_permitted"] = True
        return kwargs

    def clean(self) -> None:
        super().clean()
        first_row_by_email: dict[str, int] = {}
        first_row_by_phone: dict[str, int] = {}
        # Rows are numbered as the page shows them: rows marked for deletion
        # are hidden there and get no number.
        row_number = 0
        for form in self.forms:
            if self.can_delete and form.cleaned_data.get("DELETE"):
                continue
            row_number += 1
            if not form.cleaned_data:
                continue
            email = form.cleaned_data.get("email", "")
            phone = form.cleaned_data.get("phone_number", "")
            if email:
                # The database compares whole addresses case-insensitively.
                key = email.lower()
                if key in first_row_by_email:
                    form.add_error(
                        "email", f"Duplicate email: row {first_row_by_email[key]} has it too."
                    )
                else:
                    first_row_by_email[key] = row_number
            if phone:
                if phone in first_row_by_phone:
                    form.add_error(
                        "phone_number",
                        f"Duplicate phone number: row {first_row_by_phone[phone]} has it too.",
                    )
                else:
                    first_row_by_phone[phone] = row_number


RecipientFormSet = inlineformset_factory(
    Campaign,
    Recipient,
    form=RecipientForm,
    formset=BaseRecipientFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=settings.MAX_RECIPIENT_ROWS,
    validate_max=True,
    absolute_max=settings.MAX_RECIPIENT_ROWS,
    can_delete=True,
)


class RecipientFilterForm(forms.Form):
    """The GET parameters that filter the recipients table on the campaign page."""

    status = forms.ChoiceField(
        choices=[("", "All statuses"), *Recipient.Status.choices],
        required=False,
        error_messages={
            "invalid_choice": "“%(value)s” is not a recipient status. Choose one from the list."
        },
    )
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        strip=True,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Name, email or phone", "maxlength": 200}
        ),
    )

    def filter(self, recipients: QuerySet[Recipient]) -> QuerySet[Recipient]:
        """Narrow `recipients` to the cleaned status and search text.

        `icontains` escapes `%` and `_`, so the search text matches literally.
        """
        status = self.cleaned_data.get("status")
        if status:
            recipients = recipients.filter(status=status)
        text = self.cleaned_data.get("q")
        if text:
            recipients = recipients.filter(
                Q(name__icontains=text) | Q(email__icontains=text) | Q(phone_number__icontains=text)
            )
        return recipients


class SendTestForm(forms.Form):
    """The address of a test send, and the preview's recipient whose fields the message uses.

    An address with "@" is an email address and gets the email; anything
    else is a phone number and gets the SMS. Both are cleaned as recipients'
    values are. The cleaned data contains `email` and `phone` (one of them
    empty) and `recipient`, a Recipient of the form's campaign or None.
    """

    address = forms.CharField(
        label="Email address or phone number",
        max_length=254,
        error_messages={"required": "Enter an email address or a phone number."},
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "placeholder": "you@example.com or +12025550101"}
        ),
    )
    # The largest value of PostgreSQL's bigint, the type of recipient ids.
    recipient = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.HiddenInput,
        error_messages={
            code: "The recipient id is not valid. Choose a recipient in the preview and send again."
            for code in ("invalid", "min_value", "max_value")
        },
    )

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "test_send_%s")
        super().__init__(*args, **kwargs)
        self.campaign = campaign

    def clean_address(self) -> str:
        value = self.cleaned_data["address"]
        try:
            email, phone = clean_address(value, settings.PHONE_DEFAULT_REGION)
        except InvalidContact as exc:
            raise ValidationError(str(exc)) from None
        if not email and not phone:
            raise ValidationError("Enter an email address or a phone number.")
        self.cleaned_data["email"] = email
        self.cleaned_data["phone"] = phone
        return email or phone

    def clean_recipient(self) -> Recipient | None:
        recipient_id = self.cleaned_data["recipient"]
        if recipient_id is None:
            return None
        recipient = self.campaign.recipients.filter(pk=recipient_id).first()
        if recipient is None:
            raise ValidationError(
                "The recipient shown in the preview is no longer in this campaign. "
                "Choose another recipient and send again."
            )
        return recipient
