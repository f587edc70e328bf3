from django.contrib import admin

from .models import Line, Registry, Repository, Tag, Version


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    list_display = ["host", "insecure", "concurrency"]
    # Raised for registries that allow more (Docker Hub, GHCR, Quay): editable from the list.
    list_editable = ["concurrency"]


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["__str__", "enabled", "interval", "next_poll_at", "lease_until"]
    list_filter = ["enabled", "registry"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "repository", "kind", "version", "variant"]
    list_filter = ["kind"]
    search_fields = ["name"]
    list_select_related = ["repository__registry"]


admin.site.register(Line)
admin.site.register(Version)
