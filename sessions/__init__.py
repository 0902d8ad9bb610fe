"""Sessions: folder layout, session.yaml schema and validation, configuration, output paths."""
