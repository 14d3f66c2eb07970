"""Pages of a campaign's recipients that cost little at either end of the table."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet


class RecipientPaginator(Paginator):
    """A Paginator for a queryset in id order that reads late pages from the end.

    A page is read with OFFSET, and PostgreSQL reads every row that it skips.
    So a page in the second half of the list is read in descending id order,
    skipping only the rows after it, and put back in ascending order. The
    last page then costs what the first does, and no page skips more than
    half of the rows.

    `count`, when given, is the number of rows in the queryset, for example
    from the campaign's status counts; without it the paginator counts them.
    """

    def __init__(self, object_list: QuerySet[Any], per_page: int, count: int | None = None):
        super().__init__(object_list, per_page)
        self.queryset = object_list
        if count is not None:
            # Paginator.count is a cached_property, so this value replaces the
            # COUNT(*) query.
            self.count = count

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        after = self.count - top
        if after < bottom:
            rows = list(self.queryset.reverse()[after : self.count - bottom])
            rows.reverse()
        else:
            rows = list(self.queryset[bottom:top])
        return Page(rows, number, self)
