"""Request and response models, one module per resource (Create / Public / a list wrapper with data and count)."""
