"""Developer and operator tools: never in the Lambda zip.

- ``emulators``: the local stack (Secrets Manager, Okta, the sample API, Lambda), dev extra only.
- ``release``: build, deploy and operate the stack on AWS (runtime + ``release`` extra).
- ``cli``: the ``okta-bridge`` command, on top of both.
"""
