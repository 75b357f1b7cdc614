"""Built-in benchmarks; importing this package registers them."""
