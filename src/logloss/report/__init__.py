"""Numbers -> words, tables and pictures: what the CLI and notebooks show a reader."""
