"""Forms of the workspace pages: naming a workspace and adding or changing a member."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import (
    WORKSPACE_NAME_MAX_LENGTH,
    InvalidWorkspaceName,
    Membership,
    Role,
    Workspace,
    clean_workspace_name,
)

USERNAME_OR_EMAIL_MAX_LENGTH = 254


class WorkspaceNameForm(forms.ModelForm):
    """A workspace's name, unique among the workspaces of `user`.

    Two workspaces of one user with the same name could not be distinguished in
    the switcher. Names of other users' workspaces are not checked, so the
    form reveals nothing about them.
    """

    class Meta:
        model = Workspace
        fields = ["name"]
        labels = {"name": "Workspace name"}
        widgets = {"name": forms.TextInput(attrs={"maxlength": WORKSPACE_NAME_MAX_LENGTH})}
        error_messages = {"name": {"required": "Enter a name for the workspace."}}

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self) -> str:
        try:
            name = clean_workspace_name(self.cleaned_data["name"])
        except InvalidWorkspaceName as exc:
            raise ValidationError(str(exc)) from None
        taken = Membership.objects.filter(user_id=self.user.pk, workspace__name=name)
        if self.instance.pk is not None:
            taken = taken.exclude(workspace_id=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"You already have a workspace named “{name}”.")
        return name


class MemberAddForm(forms.Form):
    """A user to add, by username or email address; an unknown address is invited."""

    user = forms.CharField(
        label="Username or email address",
        max_length=USERNAME_OR_EMAIL_MAX_LENGTH,
        error_messages={"required": "Enter the username or the email address of the person."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "ada@example.com"}),
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_user(self) -> str:
        """Find the account; leave `cleaned_data["account"]` None for an address to invite."""
        value = self.cleaned_data["user"].strip()
        user_model = get_user_model()
        account = user_model.objects.filter(username=value).first()
        if account is None:
            # Invitations make the lower-cased address the username.
            same = list(user_model.objects.filter(username__iexact=value)[:2])
            account = same[0] if len(same) == 1 else None
        if account is None and "@" in value:
            matches = list(user_model.objects.filter(email__iexact=value)[:2])
            if len(matches) > 1:
                raise ValidationError(
                    f"Several accounts have the email address {value}; enter the username instead."
                )
            account = matches[0] if matches else None
        if account is None:
            if "@" not in value:
                raise ValidationError(
                    f"No account has the username {value}. Enter an email address to invite "
                    "someone who has no account yet."
                )
            try:
                validate_email(value)
            except ValidationError:
                raise ValidationError(f"{value} is not a valid email address.") from None
            if len(value) > user_model._meta.get_field("username").max_length:  # type: ignore[operator]
                raise ValidationError("This email address is too long to be a username.")
        elif Membership.objects.filter(workspace=self.workspace, user=account).exists():
            raise ValidationError(
                f"{account.get_username()} is already a member of this workspace."
            )
        self.cleaned_data["account"] = account
        return value


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)
