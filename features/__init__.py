"""RepRadar: features."""
