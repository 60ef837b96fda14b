"""API routes, one module per resource; each is a thin call into the library."""
