"""Demo data for development and benchmarks: synthetic SIPAS responses, bulk-loaded.

Not part of the domain: it reads surveys, feedback and scoring, and nothing imports it but
``bench/`` and the tests. ``manage.py generate_demo_data`` is its interface.
"""
