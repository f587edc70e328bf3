"""The repository page: lines → versions → tags, in the shape vendors' consoles use."""

from django.shortcuts import get_object_or_404, render

from catalog.models import Repository
from tagledger.access import readable

from ..lines import overview
from ..models import with_poll_health


@readable
def repository(request, pk: int):
    repository = get_object_or_404(with_poll_health(Repository.objects.select_related("registry")), pk=pk)
    return render(
        request, "history/repository.html", {"repository": repository, "overview": overview(repository)}
    )
