"""RepRadar: training."""
