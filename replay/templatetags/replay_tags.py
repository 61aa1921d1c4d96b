from django import template

from replay.redaction import redact_error

register = template.Library()


@register.filter
def error_for(error: str, is_operator: bool) -> str:
    """`{{ e.last_error|error_for:is_operator }}`: the full error for operators only."""
    return error if is_operator else redact_error(error)
