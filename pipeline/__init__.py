"""Video-to-markers stages and the runner that chains them."""
