"""The caller's request: the event parsed, who may ask, which path and query, the API call."""
