"""The ``okta-bridge`` command: one tree of commands over ``release`` and ``emulators``."""
