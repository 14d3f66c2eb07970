"""Create a user who can sign in, such as the first one of a new installation."""

from __future__ import annotations

import getpass
import sys
from typing import Any, cast

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Field

from accounts.models import (
    DEFAULT_WORKSPACE_NAME,
    Role,
    WorkspaceNotFound,
    join_workspace,
    workspace_for_command,
)


class Command(BaseCommand):
    help = (
        "Create a user. The password is asked for twice, or read from the first line of "
        "standard input with --password-stdin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The name to sign in with.")
        parser.add_argument("--email", default="", help="Email address, for password resets.")
        parser.add_argument(
            "--admin",
            action="store_true",
            help="Also let the user into the Django admin (/admin/) with every permission.",
        )
        parser.add_argument(
            "--workspace",
            metavar="NAME_OR_ID",
            help="The workspace to add the user to, by name or id; a new name creates it. "
            "Default: the oldest workspace, created as "
            f"“{DEFAULT_WORKSPACE_NAME}” on a new installation.",
        )
        parser.add_argument(
            "--role",
            choices=Role.values,
            help="The user's role in the workspace. Default: owner when the workspace "
            "has no owner yet, member otherwise.",
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from standard input instead of asking for it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = options["username"].strip()
        if not username:
            raise CommandError("The username is empty.")
        # The field's validators: the allowed characters and the length.
        field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        username_field = cast("Field[Any, Any]", field)
        try:
            username_field.run_validators(username)
        except ValidationError as exc:
            raise CommandError(f"Invalid username: {' '.join(exc.messages)}") from None
        if user_model.objects.filter(username=username).exists():
            raise CommandError(
                f"A user named {username!r} exists already. Change a password with "
                f"`manage.py changepassword {username}`."
            )
        email = options["email"].strip()
        if email:
            try:
                validate_email(email)
            except ValidationError as exc:
                raise CommandError(f"{email!r} is not a valid email address.") from exc

        user = user_model(username=username, email=email)
        password = self._password(options["password_stdin"])
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("The password is too weak: " + " ".join(exc.messages)) from exc
        user.set_password(password)
        user.is_staff = user.is_superuser = options["admin"]
        with transaction.atomic():
            try:
                workspace, created = workspace_for_command(options["workspace"])
            except WorkspaceNotFound as exc:
                raise CommandError(str(exc)) from None
            user.save()
            membership, _new = join_workspace(user, workspace, options["role"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Created user {username}{' (admin)' if options['admin'] else ''}, "
                f"{membership.get_role_display().lower()} of the "
                f"{'new ' if created else ''}workspace “{workspace.name}” (id {workspace.pk})."
            )
        )

    def _password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on standard input.")
            return password
        if not sys.stdin.isatty():
            raise CommandError(
                "Standard input is not a terminal: pass --password-stdin and pipe the password."
            )
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password (again): ")
        if first != second:
            raise CommandError("The passwords differ.")
        if not first:
            raise CommandError("The password is empty.")
        return first
