"""Pages about what was observed."""

from django.shortcuts import render

from catalog.models import Repository
from tagledger.access import readable

from .models import with_poll_health


@readable
def home(request):
    repositories = with_poll_health(Repository.objects.filter(enabled=True).select_related("registry"))
    return render(
        request, "history/home.html", {"repositories": repositories.order_by("registry__host", "name")}
    )
