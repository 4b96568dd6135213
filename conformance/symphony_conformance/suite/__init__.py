"""The Symphony IPC conformance suite (run it with ``symphony-conformance run``, or
``pytest --pyargs symphony_conformance.suite --symphony-impl SPEC``).

Every test uses the ``symphony_case`` fixture and declares the requirement ids it checks with
``@pytest.mark.requirement(...)``; its test id carries the vector id or the requirement ids.
"""
