"""A user of two workspaces switches between them in the browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Role, Workspace, join_workspace
from campaigns.models import Campaign
from tests.factories import operator_user

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_switcher_shows_the_other_workspace(
    page: Page, make_campaign: Callable[..., Campaign]
) -> None:
    make_campaign(name="Operators' launch")
    research = Workspace.objects.create(name="Research")
    join_workspace(operator_user(), research, Role.MEMBER)
    theirs = make_campaign(name="Research survey", workspace=research)

    page.goto("/")
    expect(page.get_by_role("link", name="Operators' launch")).to_be_visible()
    expect(page.get_by_role("link", name="Research survey")).to_have_count(0)

    page.get_by_label("Workspace").select_option(label="Research")
    page.get_by_role("button", name="Switch").click()

    expect(page.get_by_role("status")).to_have_text("You are working in “Research”.")
    expect(page.get_by_role("link", name="Research survey")).to_be_visible()
    expect(page.get_by_role("link", name="Operators' launch")).to_have_count(0)
    # The other workspace's campaign is not found once the user has switched away.
    page.get_by_label("Workspace").select_option(label="Operators")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text("You are working in “Operators”.")
    response = page.goto(theirs.get_absolute_url())
    assert response is not None
    assert response.status == 404
