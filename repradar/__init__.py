"""RepRadar: repradar."""
