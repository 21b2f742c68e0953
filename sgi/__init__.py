"""sgi: the command line. Thin commands over the packages below it (one module per command group)."""
