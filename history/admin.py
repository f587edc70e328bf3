from django.contrib import admin

from .models import Build, PollRun, TagEvent


@admin.register(PollRun)
class PollRunAdmin(admin.ModelAdmin):
    list_display = ["repository", "started_at", "status", "tags_seen", "heads", "gets", "changes"]
    list_filter = ["status"]
    list_select_related = ["repository__registry"]


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = ["digest", "repository", "version", "first_seen_at"]
    search_fields = ["digest"]
    list_select_related = ["repository__registry", "version"]


@admin.register(TagEvent)
class TagEventAdmin(admin.ModelAdmin):
    """Read-only: history is append-only and written by polls alone."""

    list_display = ["tag", "kind", "build", "detected_at", "not_before"]
    list_filter = ["kind"]
    list_select_related = ["tag__repository", "build"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
