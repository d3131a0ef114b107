"""The JSON API ``/api/v1`` of the BFF (described by ``/api/v1/openapi.json``)."""
