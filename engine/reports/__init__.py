"""Report formatters (registered in ``FORMATS``)."""
