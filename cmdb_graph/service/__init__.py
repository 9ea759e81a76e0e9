"""The service layer that the API and the CLI both call."""
