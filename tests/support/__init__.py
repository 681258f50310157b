"""What tests import: photos, registry set-ups, databases, live servers, tiny models.

Fixtures stay in the conftest.py files; nothing here is collected as a test, and no test file
imports from another test file.
"""
