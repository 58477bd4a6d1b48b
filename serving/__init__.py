"""RepRadar: serving."""
