"""One module per resource; app.py includes them from its ROUTERS list."""
