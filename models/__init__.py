"""RepRadar: models."""
