from django import template

from sessions_app.selectors import service_counts

register = template.Library()


@register.simple_tag
def current_service_counts() -> dict[str, object]:
    return service_counts()
