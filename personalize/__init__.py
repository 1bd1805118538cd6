"""The service: registry, jobs, workflows, documents, and the ``sscard`` command line."""
