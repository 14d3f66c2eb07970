"""Message content: a sandboxed template engine for campaign texts, and SMS length.

Campaign authors write the email subject, bodies and SMS text in Django's
template language. Django's templates are not a sandbox, because a template
rendered by the project's engine can load tag libraries, include files,
print debug output and walk attributes of whatever the context contains.
So content is compiled by an engine of its own:

- It has no loaders, so no tag can read a file, and no tag libraries
  except the allow-lists below: `if`/`elif`/`else` and `firstof` as tags,
  and the filters in ALLOWED_FILTERS.
- Every variable, in output and in tag and filter arguments, is checked
  while the template compiles. A name other than those in ALLOWED_VARIABLES
  and any attribute or index lookup (`{{ email.upper }}`) are rejected
  with the line number, so the form reports them when the campaign is
  saved, not when it is dispatched.
- The context is a plain dictionary of recipient strings, so even a lookup
  that passed the checks could reach nothing else.
- A `{{` or `{%` that the lexer leaves in text, because its closing is
  missing, is rejected too, rather than sent to recipients as written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Lexer, Parser, Token, TokenType, Variable
from django.utils.text import get_text_list

if TYPE_CHECKING:
    from campaigns.models import Recipient

ALLOWED_VARIABLES = ("name", "first_name", "email", "phone", "unsubscribe_url")

# Built-in tags that only branch on or print the recipient fields.
ALLOWED_TAGS = ("if", "firstof")
# Built-in filters that transform one string. Filters whose output can grow
# without limit from a number in the template (ljust, center, rjust,
# stringformat), that mark text as safe HTML (safe, safeseq) or that read
# anything but their input are left out.
ALLOWED_FILTERS = (
    "capfirst",
    "default",
    "linebreaksbr",
    "lower",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
)

# The allow-lists as error messages show them: "a, b or c".
_VARIABLE_NAMES = get_text_list(list(ALLOWED_VARIABLES), "or")
_TAG_NAMES = get_text_list(list(ALLOWED_TAGS), "or")
_FILTER_NAMES = get_text_list(list(ALLOWED_FILTERS), "or")

# Closing and middle tags of the allowed tags, which the parser handles itself.
_STRUCTURE_TAGS = ("elif", "else", "endif")

# " on line 3" in Django's syntax error messages.
_LINE_IN_MESSAGE = re.compile(r" on line \d+")

# The opening of a variable or tag. Django's lexer leaves one in plain text
# when its closing "}}" or "%}" is missing or on another line, and the text
# would then reach recipients as it is. A lone "}}" or "}" is left alone,
# because CSS in an HTML body has braces.
_UNCLOSED_OPENING = re.compile(r"\{\{|\{%")
_UNCLOSED_KINDS = {"{{": ("variable", "}}"), "{%": ("tag", "%}")}
# Characters of the unclosed text that an error message quotes.
_QUOTED_LENGTH = 30

# Compiled templates kept for reuse, because a dispatch renders the same
# content once per recipient.
_CACHED_TEMPLATES = 256


def _build_library() -> Library:
    library = Library()
    library.tag("if", defaulttags.do_if)
    library.tag("firstof", defaulttags.firstof)
    for name in ALLOWED_FILTERS:
        library.filter(name, getattr(defaultfilters, name))
    return library


class _SandboxEngine(Engine):
    """An engine whose only built-ins are the allowed tags and filters."""

    default_builtins: ClassVar[list[str]] = []

    def get_template_builtins(self, builtins: list[str]) -> list[Library]:
        return [_build_library()]


# No directories, no app templates and no loaders, so `{% include %}` and
# `{% extends %}` would have nothing to read even if they were registered.
CONTENT_ENGINE = _SandboxEngine(dirs=[], app_dirs=False, loaders=[], libraries={}, debug=False)


class _CheckingParser(Parser):
    """A parser that rejects unknown variables, lookups, tags and filters with their line."""

    current_token: Token | None = None

    def next_token(self) -> Token:
        token: Token = super().next_token()
        self.current_token = token
        return token

    def compile_filter(self, token: str) -> FilterExpression:
        try:
            expression = super().compile_filter(token)
            _check_variable(expression.var)
            for _function, arguments in expression.filters:
                for is_variable, argument in arguments:
                    if is_variable:
                        _check_variable(argument)
        except TemplateSyntaxError as exc:
            # The error belongs to the tag being read, which is the `elif`
            # line rather than its `if` when they differ.
            if self.current_token is not None:
                exc.token = self.current_token  # type: ignore[attr-defined]
            raise
        return expression

    def find_filter(self, filter_name: str) -> Any:
        if filter_name not in self.filters:
            raise TemplateSyntaxError(f"unknown filter “{filter_name}”. Use {_FILTER_NAMES}.")
        return self.filters[filter_name]

    def invalid_block_tag(
        self, token: Token, command: str, parse_until: Iterable[str] | None = None
    ) -> None:
        if command in _STRUCTURE_TAGS:
            if not parse_until:
                raise self.error(token, f"“{command}” has no opening {{% if %}}.")
            expected = get_text_list(list(parse_until), "or")
            raise self.error(token, f"“{command}” is not valid here. Expected {expected}.")
        raise self.error(
            token,
            f"the tag “{command}” is not allowed in message content. Use {_TAG_NAMES}.",
        )


def _check_variable(variable: Any) -> None:
    """Reject a variable other than a recipient field, or any lookup into one."""
    if not isinstance(variable, Variable) or variable.lookups is None:
        # A string or number literal.
        return
    root = variable.lookups[0]
    if root not in ALLOWED_VARIABLES:
        raise TemplateSyntaxError(f"unknown variable “{variable.var}”. Use {_VARIABLE_NAMES}.")
    if len(variable.lookups) > 1:
        raise TemplateSyntaxError(
            f"“{variable.var}” reads an attribute or item of {root}, which message content "
            f"cannot do. Use a filter instead, such as {root}|upper."
        )


def _check_unclosed(tokens: list[Token]) -> None:
    """Reject a `{{` or `{%` left in text: a variable or tag without its closing."""
    for token in tokens:
        if token.token_type != TokenType.TEXT:
            continue
        match = _UNCLOSED_OPENING.search(token.contents)
        if match is None:
            continue
        lineno = (token.lineno or 1) + token.contents.count("\n", 0, match.start())
        text = token.contents[match.start() :].split("\n", 1)[0].rstrip()
        if len(text) > _QUOTED_LENGTH:
            text = text[:_QUOTED_LENGTH] + "…"
        kind, closing = _UNCLOSED_KINDS[match.group()]
        exc = TemplateSyntaxError(
            f"“{text}” is an unclosed {kind}. Close it with “{closing}” on the same line, "
            "or remove it."
        )
        exc.token = Token(TokenType.TEXT, text, lineno=lineno)  # type: ignore[attr-defined]
        raise exc


class _SandboxTemplate(Template):
    """A template compiled by `_CheckingParser` on the sandbox engine."""

    def compile_nodelist(self) -> Any:
        tokens = Lexer(self.source).tokenize()
        _check_unclosed(tokens)
        parser = _CheckingParser(
            tokens, self.engine.template_libraries, self.engine.template_builtins, self.origin
        )
        nodelist = parser.parse()
        self.extra_data = parser.extra_data
        return nodelist


@functools.lru_cache(maxsize=_CACHED_TEMPLATES)
def _compile(source: str) -> Template:
    """Compile `source`. Raises ValidationError with the line of the first error."""
    try:
        return _SandboxTemplate(source, engine=CONTENT_ENGINE)
    except TemplateSyntaxError as exc:
        token = getattr(exc, "token", None)
        message = str(exc.args[0]) if exc.args else str(exc)
        if token is not None:
            # Some of Django's messages name the line themselves.
            message = f"Line {token.lineno}: {_LINE_IN_MESSAGE.sub('', message)}"
        raise ValidationError(message, code="invalid_template") from None


def _render(source: str, fields: dict[str, str], *, html: bool) -> str:
    if not source:
        return ""
    template = _compile(source)
    context = Context(dict(fields), autoescape=html)
    # The node list is rendered directly: Template.render() adds context
    # managers for block and include state, which these templates cannot
    # use, and they took a third of the time of a dispatch's rendering.
    context.template = template
    rendered = template.nodelist.render(context)
    # A plain str rather than the SafeString that render() returns, so that a
    # page showing the HTML body escapes it. str() would keep the subclass.
    return str.__str__(rendered)


# Values for the trial render at validation time.
_SAMPLE_FIELDS = {
    "name": "Ada Lovelace",
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+12025550101",
    "unsubscribe_url": "https://mail.example.com/u/sample-token",
}


def validate_template(source: str, *, html: bool) -> None:
    """Compile `source` as message content and render it once with sample recipient fields.

    Raises ValidationError naming the line of a syntax error, an unknown
    variable, tag or filter, or a lookup into a recipient field. `html`
    selects autoescaping, as for the HTML body.
    """
    _render(source, _SAMPLE_FIELDS, html=html)


def validate_text_template(source: str) -> None:
    """Validate a subject, plain-text body or SMS text (see validate_template)."""
    validate_template(source, html=False)


def validate_html_template(source: str) -> None:
    """Validate an HTML body (see validate_template)."""
    validate_template(source, html=True)


@dataclass(frozen=True)
class RenderedContent:
    """A campaign's message for one recipient; a part the campaign lacks is ""."""

    subject: str
    text: str
    html: str
    sms: str


class MessageSource(Protocol):
    """The content fields of a campaign, or of a copy taken when a dispatch starts."""

    @property
    def email_subject(self) -> str: ...
    @property
    def email_text(self) -> str: ...
    @property
    def email_html(self) -> str: ...
    @property
    def sms_text(self) -> str: ...


def missing_content(source: MessageSource, channel: str) -> str:
    """Return what `source` lacks to be sent on `channel` ("email" or "sms"), or "".

    An email needs a subject and a plain-text body; the HTML body is optional.
    An SMS needs its text.
    """
    if channel == "email":
        absent = missing_email_parts(source)
        return f"the campaign has no email {' or '.join(absent)}" if absent else ""
    return "" if source.sms_text.strip() else "the campaign has no SMS text"


def missing_email_parts(source: MessageSource) -> list[str]:
    """Return the blank parts among the email's required ones: "subject", "text", both or none."""
    return [
        label
        for label, value in (("subject", source.email_subject), ("text", source.email_text))
        if not value.strip()
    ]


def template_fields(name: str, email: str, phone: str, unsubscribe_url: str = "") -> dict[str, str]:
    """Return the template context for a recipient: the fields in ALLOWED_VARIABLES.

    `first_name` is the name's first word, or "" for a recipient without a name.
    """
    words = name.split()
    return {
        "name": name,
        "first_name": words[0] if words else "",
        "email": email,
        "phone": phone,
        "unsubscribe_url": unsubscribe_url,
    }


def recipient_fields(recipient: Recipient, unsubscribe_url: str = "") -> dict[str, str]:
    """Return the template context for `recipient` (see template_fields)."""
    return template_fields(recipient.name, recipient.email, recipient.phone_number, unsubscribe_url)


def _context(fields: dict[str, str]) -> dict[str, str]:
    return {name: str(fields.get(name, "")) for name in ALLOWED_VARIABLES}


def render_email(source: MessageSource, fields: dict[str, str]) -> tuple[str, str, str]:
    """Render the subject, plain-text body and HTML body for the recipient `fields`.

    Only the HTML body is autoescaped. Line breaks in the subject become
    spaces, because an email header cannot contain them. Raises
    ValidationError when stored content does not compile, which the form
    prevents but a direct database write does not.
    """
    context = _context(fields)
    subject = _render(source.email_subject, context, html=False)
    return (
        " ".join(subject.split()),
        _render(source.email_text, context, html=False),
        _render(source.email_html, context, html=True),
    )


def render_sms(source: MessageSource, fields: dict[str, str]) -> str:
    """Render the SMS text for the recipient `fields` (see render_email)."""
    return _render(source.sms_text, _context(fields), html=False)


def render_message(source: MessageSource, fields: dict[str, str]) -> RenderedContent:
    """Render the campaign's subject, bodies and SMS text with the recipient `fields`."""
    subject, text, html = render_email(source, fields)
    return RenderedContent(subject=subject, text=text, html=html, sms=render_sms(source, fields))


# SMS encodings (3GPP TS 23.038, the successor of GSM 03.38). The GSM 7-bit
# default alphabet, in code order from 0x00, without 0x1B, which is the
# escape to the extension table rather than a character.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: each is sent as ESC plus one septet, so it counts 2.
GSM7_EXTENSION = "\f^{}\\[~]|€"

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# Characters (septets for GSM-7, UTF-16 code units for UCS-2) in one SMS, and
# in each part of a concatenated SMS, whose header takes the rest.
_SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
_PART_LIMIT = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class SmsInfo:
    """The size of an SMS text.

    `length` counts septets for GSM-7 (an extension character takes two) and
    UTF-16 code units for UCS-2 (a character outside the Basic Multilingual
    Plane, such as most emoji, takes two).
    """

    length: int
    encoding: str
    segments: int


def sms_segments(text: str) -> SmsInfo:
    """Measure `text` as an SMS: its encoding, length and number of segments.

    GSM-7 is used when every character is in the default alphabet or its
    extension table, and UCS-2 otherwise. Segments are filled without
    splitting an escape sequence or a surrogate pair, because each part must
    decode on its own. So a text just over a part limit may need one more
    segment than a plain division gives. An empty text has 0 segments.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        encoding = GSM7
        units = [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        encoding = UCS2
        units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    length = sum(units)
    if length == 0:
        return SmsInfo(length=0, encoding=encoding, segments=0)
    if length <= _SINGLE_LIMIT[encoding]:
        return SmsInfo(length=length, encoding=encoding, segments=1)

    part_limit = _PART_LIMIT[encoding]
    segments = 1
    used = 0
    for size in units:
        if used + size > part_limit:
            segments += 1
            used = 0
        used += size
    return SmsInfo(length=length, encoding=encoding, segments=segments)
