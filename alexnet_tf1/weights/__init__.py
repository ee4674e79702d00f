"""Published weight files in and out, their means and class names."""
