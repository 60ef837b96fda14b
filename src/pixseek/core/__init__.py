"""Values and ports shared by every layer: records, queries, filters, errors, ids. No I/O."""
