"""sgi: the command line and the glue (settings, local Kafka, simulator, meeting pack)."""
