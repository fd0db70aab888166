"""Input and output: safe writing of results folders, the table registry, and reading them back."""
