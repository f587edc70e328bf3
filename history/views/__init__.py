"""Read-only pages, one module per feature; staff actions live in `staff`."""
