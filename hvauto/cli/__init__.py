"""The command line: thin Typer apps, one module per noun. Parse, call the engine, print."""
