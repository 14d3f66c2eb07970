"""Forms of the suppression list pages and its admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from campaigns.normalization import (
    InvalidContact,
    clean_address,
    clean_email,
    clean_phone,
    normalize_phone,
)
from suppressions.models import Suppression, is_suppressed

ADDRESS_MAX_LENGTH = 254


class SuppressionAddForm(forms.Form):
    """One email address or phone number to add; an "@" marks an email address."""

    address = forms.CharField(
        label="Email address or phone number",
        max_length=ADDRESS_MAX_LENGTH,
        error_messages={"required": "Enter an email address or a phone number."},
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "placeholder": "ada@example.com or +12025550101"}
        ),
    )

    def __init__(self, *args: Any, workspace_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace_id = workspace_id

    def clean_address(self) -> str:
        value = self.cleaned_data["address"]
        try:
            email, phone = clean_address(value)
        except InvalidContact as exc:
            raise ValidationError(str(exc)) from None
        if not email and not phone:
            raise ValidationError("Enter an email address or a phone number.")
        if is_suppressed(email, phone, workspace_id=self.workspace_id):
            raise ValidationError(f"{email or phone} is already on the suppression list.")
        self.cleaned_data["email"] = email
        self.cleaned_data["phone"] = phone
        return email or phone


class SuppressionSearchForm(forms.Form):
    """The GET parameter that filters the suppression list."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=ADDRESS_MAX_LENGTH,
        strip=True,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Email or phone", "maxlength": 254}
        ),
    )

    def filter(self, suppressions: QuerySet[Suppression]) -> QuerySet[Suppression]:
        """Narrow `suppressions` to the entries whose email or phone contains the search text.

        Text with digits and no "@" is also cleaned as a phone number, as the
        add form cleans one, so "(202) 555-0101" finds +12025550101 and
        "555-0101" finds the numbers that contain 5550101.
        """
        text = self.cleaned_data.get("q")
        if not text:
            return suppressions
        matches = Q(email__icontains=text) | Q(phone__icontains=text)
        if "@" not in text and any(char.isdigit() for char in text):
            phone = normalize_phone(text)
            if phone and phone != text:
                matches |= Q(phone__contains=phone)
        return suppressions.filter(matches)


class SuppressionAdminForm(forms.ModelForm):
    """The admin's form, which cleans values as the suppression page does.

    Django checks the model's constraints after these methods, so a second
    address or a duplicate gets the constraint's message.
    """

    class Meta:
        model = Suppression
        fields = ["workspace", "email", "phone", "reason", "source_campaign"]

    def clean_email(self) -> str:
        return _cleaned(clean_email, self.cleaned_data.get("email", ""))

    def clean_phone(self) -> str:
        return _cleaned(clean_phone, self.cleaned_data.get("phone", ""))


def _cleaned(clean: Any, value: str) -> str:
    try:
        return str(clean(value))
    except InvalidContact as exc:
        raise ValidationError(str(exc)) from None
