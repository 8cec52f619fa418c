"""Documents of the workflows: the learned triage's model and schedule."""
