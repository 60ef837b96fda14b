"""The embedded LanceDB store: schema, SQL compiler and the store itself."""
