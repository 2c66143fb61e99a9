"""Delivery of answers too large for Lambda's 6 MB synchronous response: written to an S3 bucket
(SSE-KMS, streamed in parts) and answered with a pointer and a presigned GET URL.

``s3`` is the public face (``S3Delivery``, ``Spill``, ``Delivered``); ``upload`` holds one object's
bytes on their way with bounded memory; ``s3_api`` is S3's REST calls, signed with
``okta_bridge.secret.sigv4`` and sent through the bridge's ``HttpClient``.
"""
