"""The domain: settings, storage, models and services. Imports nothing else of helpgate's."""
