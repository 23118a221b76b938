"""The synthetic web: generated image-text pairs with labelled noise, and a local image server."""
