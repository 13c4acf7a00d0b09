"""The Python module pgcache grew out of, as a reference for the migration test and the
benchmark."""
