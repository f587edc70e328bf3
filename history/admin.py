"""History in the admin: to look at, never to edit. Polls alone write it, and it is append-only."""

from django.contrib import admin

from .models import Attestation, Build, Platform, PollRun, TagEvent, TagState


class RecordAdmin(admin.ModelAdmin):
    """Viewable by staff with the view permission; nobody, superusers included, adds, changes or
    deletes. Django's admin also refuses to delete a repository, tag or version with rows here,
    because deleting it would cascade into them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PollRun)
class PollRunAdmin(RecordAdmin):
    list_display = ["repository", "started_at", "status", "tags_seen", "heads", "gets", "changes"]
    list_filter = ["status"]
    list_select_related = ["repository__registry"]


@admin.register(Build)
class BuildAdmin(RecordAdmin):
    list_display = ["digest", "repository", "version", "first_seen_at"]
    search_fields = ["digest"]
    list_select_related = ["repository__registry", "version"]


@admin.register(Platform)
class PlatformAdmin(RecordAdmin):
    list_display = ["digest", "__str__", "build", "size"]
    search_fields = ["digest", "config_digest"]
    list_select_related = ["build"]


@admin.register(Attestation)
class AttestationAdmin(RecordAdmin):
    list_display = ["digest", "build", "subject"]
    search_fields = ["digest"]
    list_select_related = ["build"]


@admin.register(TagEvent)
class TagEventAdmin(RecordAdmin):
    list_display = ["tag", "kind", "build", "detected_at", "not_before"]
    list_filter = ["kind"]
    list_select_related = ["tag__repository", "build"]


@admin.register(TagState)
class TagStateAdmin(RecordAdmin):
    list_display = ["tag", "build", "present", "since", "confirmed_at"]
    list_filter = ["present"]
    list_select_related = ["tag__repository", "build"]
