"""Create the DatabaseCache table, so `migrate` alone leaves a database the app can run on.

Without REDIS_URL the settings use Django's DatabaseCache (registry slots and rate-limit pauses
live there); its table is not a model, so only `createcachetable` made it, and a user who ran
just `migrate` got `relation "tagledger_cache" does not exist` on the first poll.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    # The command itself, not a copy: it finds every configured DatabaseCache, honours routers,
    # leaves an existing table alone and does nothing when the cache is Redis.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    # Reverse is a no-op: the table belongs to whichever cache settings are current, not to this
    # migration (it may predate it, made by `createcachetable`), holds only disposable state, and
    # is reused as it is if the migration runs forward again.
    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
