"""The report layer: numbers turned into text, HTML and pictures."""
