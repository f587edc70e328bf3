"""Pages about what is watched."""

from django.shortcuts import render

from tagledger.access import readable


@readable
def home(request):
    return render(request, "catalog/home.html")
