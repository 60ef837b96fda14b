"""Request and response bodies of the HTTP API (pydantic models), one module per resource."""
