"""Web plumbing: the API object, authentication, access rules, errors, HTTP limits, rate limits, logs."""
