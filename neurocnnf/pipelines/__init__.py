"""Runners: the commands' and workflow rules' jobs, each one function that reads inputs, calls
the library and writes a result folder (tables, data, figures). Nothing below this layer
writes result trees."""
