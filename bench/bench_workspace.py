"""The workspace of the benchmarks' campaigns, and the user who signs in to it.

Import this after django.setup(). The workspace, "Benchmarks", is created on
first use and kept between runs, as the bench user is.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import Workspace, join_workspace, workspace_for_command

BENCH_WORKSPACE = "Benchmarks"


def bench_workspace() -> Workspace:
    workspace, _created = workspace_for_command(BENCH_WORKSPACE)
    return workspace


def bench_member(username: str) -> Any:
    """Return the user `username`, created if needed, as a member of the bench workspace."""
    user, _created = get_user_model().objects.get_or_create(username=username)
    join_workspace(user, bench_workspace())
    return user
