"""What was observed: builds, their platforms, tag history and poll runs."""
