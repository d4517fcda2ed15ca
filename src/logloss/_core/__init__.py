"""The bottom layer: checks and messages, prepared inputs, precision, reduction, compensated
arithmetic and settings. It imports NumPy and nothing else of logloss's layers above it."""
