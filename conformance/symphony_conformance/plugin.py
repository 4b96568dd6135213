"""pytest plugin entry point (``pytest11``); inert unless the conformance suite is selected."""
