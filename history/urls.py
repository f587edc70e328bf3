from django.urls import path

from . import feeds
from .views import (
    builds,
    changelog,
    compare,
    hooks,
    notifications,
    pages,
    pin_lists,
    pins,
    repositories,
    staff,
    tags,
)

app_name = "history"

urlpatterns = [
    path("", pages.home, name="home"),
    path("search", pages.search, name="search"),
    path("compare", compare.compare, name="compare"),
    path("pins", pins.pins, name="pins"),
    path("pins/lists/", pin_lists.index, name="pin_lists"),
    path("pins/lists/<int:pk>", pin_lists.pin_list, name="pin_list"),
    path("pins/lists/<int:pk>/delete", pin_lists.delete, name="pin_list_delete"),
    path("changelog", changelog.changelog, name="changelog"),
    path("changelog/feed.atom", feeds.changelog_feed, name="changelog_feed"),
    path("repositories/<int:pk>/changelog", changelog.repository_changelog, name="repository_changelog"),
    path("repositories/<int:pk>/", repositories.repository, name="repository"),
    path("repositories/<int:pk>/tags/<path:name>", tags.tag, name="tag"),
    path("versions/<int:pk>/", builds.version, name="version"),
    path("versions/<int:pk>/compare", builds.version_compare, name="version_compare"),
    path("builds/<int:pk>/", builds.build, name="build"),
    path("builds/<int:pk>/packages", builds.build_packages, name="build_packages"),
    path("notifications/", notifications.subscriptions, name="notifications"),
    path("notifications/deliveries", notifications.deliveries, name="deliveries"),
    path("notifications/<int:pk>/test", notifications.send_test, name="notification_test"),
    path("notifications/<int:pk>/disable", notifications.disable, name="notification_disable"),
    path("notifications/<int:pk>/enable", notifications.enable, name="notification_enable"),
    path("notifications/<int:pk>/remove", notifications.remove, name="notification_remove"),
    path("watch", staff.watch, name="watch"),
    path("repositories/<int:pk>/unwatch", staff.unwatch, name="unwatch"),
    path("repositories/<int:pk>/poll", staff.poll_now, name="poll_now"),
    path("hooks/registry/<str:token>", hooks.registry_push, name="registry_push"),
]
