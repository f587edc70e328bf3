"""What is watched and how it is organised: registries, repositories, lines, versions, tags."""
