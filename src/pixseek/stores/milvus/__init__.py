"""Milvus: the distributed vector engine, through the same VectorStore protocol."""
