"""Development tools: the development server, demo data, the OpenAPI writer."""
